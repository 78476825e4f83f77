"""The image against a real Docker engine: build, health, user, token, a notebook, the compose cluster.

These run wherever an engine answers (``docker.from_env().ping()``) and skip, saying why, elsewhere,
as on the machines this project is developed on, which have only the docker client. Building needs
the two GraphFrames checksums in the environment (GRAPHFRAMES_SHA256, GRAPHFRAMES_GRAPHX_SHA256; see
the README (The Docker image)), or PYSPARK_KERNEL_IMAGE naming an image already built.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.image, pytest.mark.timeout(3600)]

# A notebook of two cells, executed by nbconvert in the PySpark_Python3 kernel inside the container.
NOTEBOOK_CELLS = [
    "print('count', spark.range(10).count())",
    "from graphframes import GraphFrame\n"
    "v = spark.createDataFrame([('a',), ('b',), ('c',)], ['id'])\n"
    "e = spark.createDataFrame([('a', 'b'), ('c', 'b')], ['src', 'dst'])\n"
    "print('inDegree', sorted(tuple(row) for row in GraphFrame(v, e).inDegrees.collect()))",
]
WRITE_AND_RUN_NOTEBOOK = """
import json, subprocess, sys, nbformat
cells = json.loads(sys.argv[1])
notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
nbformat.write(notebook, "/tmp/check.ipynb")
subprocess.run(["jupyter", "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.kernel_name=pyspark_python3",
                "--ExecutePreprocessor.timeout=300", "--output", "/tmp/checked.ipynb", "/tmp/check.ipynb"], check=True)
executed = nbformat.read("/tmp/checked.ipynb", as_version=4)
print("".join(output.get("text", "") for cell in executed.cells for output in cell.outputs))
"""


def wait_for(what: str, check: Any, seconds: float, every: float = 2.0) -> Any:
    """``check()``'s first truthy answer within ``seconds``; fails naming ``what`` otherwise."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = check()
        if answer:
            return answer
        time.sleep(every)
    pytest.fail(f"{what}: not within {seconds:.0f} s")


@pytest.fixture(scope="module")
def engine() -> Any:
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as error:  # the client alone cannot build or run anything
        pytest.skip(f"no Docker engine answers here (docker.from_env().ping() failed: {error})")
    return client


@pytest.fixture(scope="module")
def image(engine: Any) -> str:
    prebuilt = os.environ.get("PYSPARK_KERNEL_IMAGE")
    if prebuilt:
        engine.images.get(prebuilt)
        return prebuilt
    checksums = {name: os.environ.get(name, "") for name in ("GRAPHFRAMES_SHA256", "GRAPHFRAMES_GRAPHX_SHA256")}
    missing = [name for name, value in checksums.items() if not value]
    if missing:
        pytest.skip(f"building the image needs {' and '.join(missing)} (the GraphFrames jars' sha256, the README (The Docker image)), or PYSPARK_KERNEL_IMAGE")
    tag = "pyspark-kernel:test"
    engine.images.build(path=str(REPO), dockerfile="docker/Dockerfile", tag=tag, buildargs=checksums, rm=True, forcerm=True)
    return tag


@pytest.fixture(scope="module")
def notebook(engine: Any, image: str) -> Iterator[tuple[Any, int, str]]:
    token = secrets.token_hex(16)
    container = engine.containers.run(
        image, detach=True, environment={"JUPYTER_TOKEN": token},
        ports={"8888/tcp": ("127.0.0.1", None), "4040/tcp": ("127.0.0.1", None)},
    )
    try:
        def healthy() -> bool:
            container.reload()
            if container.status == "exited":
                pytest.fail(f"the container exited: {container.logs()[-3000:].decode(errors='replace')}")
            return container.attrs["State"].get("Health", {}).get("Status") == "healthy"

        wait_for("the notebook container to be healthy", healthy, 240)
        port = int(container.attrs["NetworkSettings"]["Ports"]["8888/tcp"][0]["HostPort"])
        yield container, port, token
    finally:
        container.remove(force=True)


def test_runs_as_a_non_root_user(notebook: tuple[Any, int, str]) -> None:
    container, _, _ = notebook
    result = container.exec_run(["id", "-u"])
    assert result.exit_code == 0 and result.output.decode().strip() == "1000"


def test_a_request_without_the_token_is_refused(notebook: tuple[Any, int, str]) -> None:
    _, port, token = notebook
    url = f"http://127.0.0.1:{port}/api/kernelspecs"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 403
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    specs = json.load(urllib.request.urlopen(request, timeout=10))
    assert specs["default"] == "pyspark_python3" and "pyspark_python3" in specs["kernelspecs"]
    assert specs["kernelspecs"]["pyspark_python3"]["spec"]["env"]["SPARK_LOCAL_IP"] == "0.0.0.0"


def test_a_notebook_runs_spark_and_graphframes_in_pyspark_python3(notebook: tuple[Any, int, str]) -> None:
    container, _, _ = notebook
    result = container.exec_run(["python", "-c", WRITE_AND_RUN_NOTEBOOK, json.dumps(NOTEBOOK_CELLS)])
    output = result.output.decode(errors="replace")
    assert result.exit_code == 0, output[-3000:]
    assert "count 10" in output and "inDegree [('b', 2)]" in output, output[-3000:]


def test_spark_ui_answers_through_the_published_port(notebook: tuple[Any, int, str]) -> None:
    """The kernelspec's SPARK_LOCAL_IP 0.0.0.0 lets the session's UI on 4040 answer from the host."""
    container, _, _ = notebook
    keep_a_kernel = (
        "import time\n"
        "from jupyter_client.manager import start_new_kernel\n"
        "km, kc = start_new_kernel(kernel_name='pyspark_python3', startup_timeout=300)\n"
        "kc.execute_interactive('spark.range(1).count()', timeout=300)\n"
        "time.sleep(90)\n"
        "km.shutdown_kernel(now=True)\n"
    )
    container.exec_run(["python", "-c", keep_a_kernel], detach=True)
    container.reload()
    ui_port = int(container.attrs["NetworkSettings"]["Ports"]["4040/tcp"][0]["HostPort"])

    def answers() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/jobs/", timeout=5).status == 200
        except OSError:
            return False

    wait_for("the Spark UI on the published port", answers, 120)


# --- the compose cluster --------------------------------------------------------------------------


# Run in the notebook container: a PySpark_Python3 kernel (its kernelspec points at the master) waits,
# bounded, for an executor on each worker, then reports where its tasks ran.
CELL = """
import socket, time
for _ in range(60):
    if sc._jsc.sc().getExecutorMemoryStatus().size() - 1 >= 2:
        break
    time.sleep(1)
hosts = sc.parallelize(range(100), 8).map(lambda _: socket.gethostname()).distinct().collect()
print('cluster', sc.master, sc.parallelize(range(100), 4).sum(), len(hosts), 'notebook' in hosts)
"""
CLUSTER_JOB = f"""
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name='pyspark_python3', startup_timeout=300)
kc.execute_interactive({CELL!r}, timeout=300, output_hook=lambda m: print(m['content'].get('text', ''), end=''))
km.shutdown_kernel(now=True)
"""


def compose(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    command = ["docker", "compose", "-f", str(REPO / "docker" / "compose.yaml"), "--project-name", "pyspark-kernel-test", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def test_compose_cluster_runs_a_job_on_both_workers(engine: Any, image: str) -> None:
    if not shutil.which("docker") or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker compose plugin is not installed (docker compose version failed)")
    env = {**os.environ, "IMAGE": image, "JUPYTER_TOKEN": secrets.token_hex(16)}
    (REPO / "work").mkdir(exist_ok=True)
    try:
        started = compose("up", "-d", "--wait", "--wait-timeout", "300", env=env)
        assert started.returncode == 0, started.stdout + started.stderr

        def two_workers() -> bool:
            try:
                status = json.load(urllib.request.urlopen("http://127.0.0.1:8080/json/", timeout=5))
            except OSError:
                return False
            return len([w for w in status.get("workers", []) if w.get("state") == "ALIVE"]) == 2

        wait_for("both workers registered with the master", two_workers, 180)
        run = compose("exec", "-T", "notebook", "python", "-c", CLUSTER_JOB, env=env)
        # Tasks ran in two containers, the workers' executors, and none in the notebook's driver.
        assert "cluster spark://master:7077 4950 2 False" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    finally:
        compose("down", "--volumes", "--timeout", "30", env=env, timeout=300)
