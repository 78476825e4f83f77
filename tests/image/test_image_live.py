"""The image against a real Docker engine: health, user, token, notebooks, the Spark UI, a standalone
cluster of its containers, the Connect server role, the JupyterHub role, and a clean stop.

``make image-test`` (scripts/image-test.sh) starts an engine where none answers, builds the image and
runs these with PYSPARK_KERNEL_IMAGE naming it. Containers are reached only through ports published on
127.0.0.1 and talk to each other on a network each test creates; every test removes what it started.
Under CI=true a missing engine or image is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.image, pytest.mark.timeout(1800)]

COUNT_CELL = "print('count', spark.range(10).count())"
GRAPHFRAMES_CELL = (
    "from graphframes import GraphFrame\n"
    "v = spark.createDataFrame([('a',), ('b',), ('c',)], ['id'])\n"
    "e = spark.createDataFrame([('a', 'b'), ('c', 'b')], ['src', 'dst'])\n"
    "print('inDegree', sorted(tuple(row) for row in GraphFrame(v, e).inDegrees.collect()))"
)
# Written and run inside a container: a notebook executed by nbconvert in the PySpark_Python3 kernel.
WRITE_AND_RUN_NOTEBOOK = """
import json, subprocess, sys, tempfile, nbformat
cells = json.loads(sys.argv[1])
folder = tempfile.mkdtemp()
notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
nbformat.write(notebook, folder + "/check.ipynb")
subprocess.run(["jupyter", "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.kernel_name=pyspark_python3",
                "--ExecutePreprocessor.timeout=300", "--output", folder + "/checked.ipynb", folder + "/check.ipynb"], check=True)
executed = nbformat.read(folder + "/checked.ipynb", as_version=4)
print("".join(output.get("text", "") for cell in executed.cells for output in cell.outputs))
"""
# A kernel that stays up (a JVM under it) until the container stops it.
KEEP_A_KERNEL = """
import time
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name='pyspark_python3', startup_timeout=300)
kc.execute_interactive('spark.range(1).count()', timeout=300)
print('kernel up', flush=True)
time.sleep(600)
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


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI runs these through make image-test)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def engine() -> Any:
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as error:  # the client alone cannot build or run anything
        unavailable(f"no Docker engine answers here (docker.from_env().ping() failed: {error}); make image-test starts one")
    return client


@pytest.fixture(scope="module")
def image(engine: Any) -> str:
    name = os.environ.get("PYSPARK_KERNEL_IMAGE")
    if not name:
        unavailable("PYSPARK_KERNEL_IMAGE is not set: make image-test builds the image and sets it")
    engine.images.get(name)
    return name


@pytest.fixture
def label() -> str:
    """A prefix for this test's containers and network, so that parallel runs never meet."""
    return f"pyspark-kernel-test-{secrets.token_hex(4)}"


class Containers:
    """Starts containers of the image and removes all of them (and the network) at the end."""

    def __init__(self, engine: Any, image: str, label: str) -> None:
        self.engine, self.image, self.label = engine, image, label
        self.started: list[Any] = []
        self.network = engine.networks.create(label)

    def run(self, name: str, command: list[str], **kwargs: Any) -> Any:
        full_name = f"{self.label}-{name}"
        container = self.engine.containers.run(self.image, command, detach=True, name=full_name, hostname=full_name, network=self.network.name, **kwargs)
        self.started.append(container)
        return container

    def remove(self) -> None:
        for container in self.started:
            try:
                container.remove(force=True, v=True)
            except Exception:
                pass
        self.network.remove()


@pytest.fixture
def containers(engine: Any, image: str, label: str) -> Iterator[Containers]:
    started = Containers(engine, image, label)
    try:
        yield started
    finally:
        started.remove()


def wait_healthy(container: Any, seconds: float = 240) -> None:
    def healthy() -> bool:
        container.reload()
        if container.status == "exited":
            pytest.fail(f"the container exited: {container.logs()[-3000:].decode(errors='replace')}")
        return container.attrs["State"].get("Health", {}).get("Status") == "healthy"

    wait_for(f"{container.name} to be healthy", healthy, seconds)


def published(container: Any, port: str) -> int:
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"][port][0]["HostPort"])


def run_notebook(container: Any, cells: list[str], user: str = "") -> str:
    result = container.exec_run(["python", "-c", WRITE_AND_RUN_NOTEBOOK, json.dumps(cells)], user=user)
    output = result.output.decode(errors="replace")
    assert result.exit_code == 0, output[-3000:]
    return output


@pytest.fixture(scope="module")
def notebook(engine: Any, image: str) -> Iterator[tuple[Any, int, str]]:
    token = secrets.token_hex(16)
    container = engine.containers.run(
        image,
        detach=True,
        environment={"JUPYTER_TOKEN": token},
        ports={"8888/tcp": ("127.0.0.1", None), "4040/tcp": ("127.0.0.1", None)},
    )
    try:
        wait_healthy(container)
        yield container, published(container, "8888/tcp"), token
    finally:
        container.remove(force=True, v=True)


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
    answer = urllib.request.urlopen(request, timeout=10)
    specs = json.load(answer)
    assert answer.status == 200 and specs["default"] == "pyspark_python3" and "pyspark_python3" in specs["kernelspecs"]
    assert specs["kernelspecs"]["pyspark_python3"]["spec"]["env"]["SPARK_LOCAL_IP"] == "0.0.0.0"


def test_a_notebook_counts_in_pyspark_python3(notebook: tuple[Any, int, str]) -> None:
    container, _, _ = notebook
    assert "count 10" in run_notebook(container, [COUNT_CELL])


def test_graphframes_runs_in_a_notebook(notebook: tuple[Any, int, str]) -> None:
    container, _, _ = notebook
    jars = container.exec_run(["sh", "-c", "ls $SPARK_HOME/jars | grep graphframes || true"]).output.decode()
    if "graphframes" not in jars:
        pytest.skip("the image was built with GRAPHFRAMES_JARS=none: Maven Central, where the jars come from, is out of reach here")
    assert "inDegree [('b', 2)]" in run_notebook(container, [GRAPHFRAMES_CELL])


def test_check_inside_the_image_passes_and_uses_the_class_data_archive(notebook: tuple[Any, int, str]) -> None:
    """The archive was built at image build time, in another cache folder than the user's own."""
    container, _, _ = notebook
    result = container.exec_run(["pyspark-kernel", "check", "pyspark_python3"])
    output = result.output.decode(errors="replace")
    assert result.exit_code == 0, output
    assert re.search(r"^OK +CDS +in use: /opt/pyspark-kernel/cache/", output, re.MULTILINE), output
    assert "WARN" not in output, output


def test_spark_ui_answers_through_the_published_port(notebook: tuple[Any, int, str]) -> None:
    """The kernelspec's SPARK_LOCAL_IP 0.0.0.0 lets the session's UI on 4040 answer from the host."""
    container, _, _ = notebook
    container.exec_run(["python", "-c", KEEP_A_KERNEL.replace("time.sleep(600)", "time.sleep(90)\nkm.shutdown_kernel(now=True)")], detach=True)
    ui_port = published(container, "4040/tcp")

    def answers() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/jobs/", timeout=5).status == 200
        except OSError:
            return False

    wait_for("the Spark UI on the published port", answers, 120)


def test_any_uid_runs_the_notebook_server_and_spark(containers: Containers) -> None:
    """docker run --user 1234:100, as OpenShift and some hubs do: no passwd entry, HOME=/."""
    container = containers.run("anyuid", ["notebook"], user="1234:100", environment={"JUPYTER_TOKEN": "t"})
    wait_healthy(container)
    assert container.exec_run(["id", "-u"]).output.decode().strip() == "1234"
    assert "count 10" in run_notebook(container, [COUNT_CELL])


def test_docker_stop_with_a_live_kernel_exits_cleanly_and_leaves_no_volume(containers: Containers) -> None:
    container = containers.run("stop", ["notebook"], environment={"JUPYTER_TOKEN": "t"})
    wait_healthy(container)
    container.exec_run(["python", "-c", KEEP_A_KERNEL], detach=True)
    wait_for("a kernel with its JVM", lambda: container.exec_run(["pgrep", "-f", "java"]).exit_code == 0, 180)
    started = time.monotonic()
    container.stop(timeout=10)
    stopped_in = time.monotonic() - started
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0, container.logs()[-2000:].decode(errors="replace")
    assert stopped_in < 10, f"docker stop took {stopped_in:.1f} s: the container was killed, not stopped"
    assert container.attrs["Mounts"] == [], "an anonymous volume was left behind"


# -- a standalone cluster of the image's containers ------------------------------------------------

CLUSTER_CELL = """
import socket, time
for _ in range(90):
    if sc._jsc.sc().getExecutorMemoryStatus().size() - 1 >= 2:
        break
    time.sleep(1)
hosts = sorted(set(sc.parallelize(range(100), 8).map(lambda _: socket.gethostname()).collect()))
print('cluster', sc.master, sc.applicationId, sc.parallelize(range(100), 4).sum(), ','.join(hosts))
"""
CLUSTER_JOB = f"""
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name='pyspark_python3', startup_timeout=300)
kc.execute_interactive({CLUSTER_CELL!r}, timeout=300, output_hook=lambda m: print(m['content'].get('text', ''), end=''))
km.shutdown_kernel(now=True)
"""


def test_master_and_two_workers_run_a_job_on_both_and_the_app_finishes(containers: Containers) -> None:
    label = containers.label
    master = containers.run("master", ["master"], ports={"8080/tcp": ("127.0.0.1", None)})
    workers = [
        containers.run(f"worker-{n}", ["worker", f"spark://{label}-master:7077"], environment={"SPARK_WORKER_CORES": "1", "SPARK_WORKER_MEMORY": "1g"})
        for n in (1, 2)
    ]
    notebook = containers.run(
        "notebook",
        ["notebook"],
        environment={"SPARK_MASTER_URL": f"spark://{label}-master:7077", "SPARK_DRIVER_HOST": f"{label}-notebook", "JUPYTER_TOKEN": "t"},
    )
    wait_healthy(master)
    master_ui = f"http://127.0.0.1:{published(master, '8080/tcp')}/json/"

    def status() -> dict:
        try:
            return json.load(urllib.request.urlopen(master_ui, timeout=5))
        except OSError:
            return {}

    wait_for("both workers registered with the master", lambda: len([w for w in status().get("workers", []) if w.get("state") == "ALIVE"]) == 2, 180)
    wait_healthy(notebook)
    run = notebook.exec_run(["python", "-c", CLUSTER_JOB])
    output = run.output.decode(errors="replace")
    found = re.search(r"cluster (\S+) (\S+) 4950 (\S+)", output)
    assert run.exit_code == 0 and found, output[-3000:]
    spark_master, app_id, hosts = found.groups()
    assert spark_master == f"spark://{label}-master:7077"
    assert hosts.split(",") == sorted(worker.name for worker in workers), "tasks ran on both workers and nowhere else"

    def finished() -> bool:
        return any(app["id"] == app_id and app["state"] == "FINISHED" for app in status().get("completedapps", []))

    wait_for("the application FINISHED on the master after the kernel shut down", finished, 60)


# -- the other roles ---------------------------------------------------------------------------------


def test_the_connect_server_role_serves_a_connect_kernel(containers: Containers, tmp_path: Path) -> None:
    """A Connect kernelspec on this machine (the same pyspark release as the image's) talks to the role."""
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import KernelHarness, install

    server = containers.run("connect", ["connect-server"], ports={"15002/tcp": ("127.0.0.1", None)})
    wait_healthy(server)
    prefix = tmp_path / "prefix"
    folder = install(prefix, "--name", "image-connect", "--remote", f"sc://127.0.0.1:{published(server, '15002/tcp')}")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(prefix / "share" / "jupyter"), os.environ.get("JUPYTER_PATH", "")])
    kernel = KernelHarness(folder.name)
    try:
        assert kernel.value("spark.range(10).count()") == "10"
        assert kernel.value("type(spark).__module__") == "'pyspark.sql.connect.session'"
    finally:
        kernel.shutdown()


# What the single-user server asks of its hub at start: the hub's version. A stand-in, because a whole
# JupyterHub (its proxy, a spawner) is beyond this test; the server's own side is real.
HUB_API = """
import http.server, json
class Hub(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"version": "5.5.4"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-JupyterHub-Version", "5.5.4")
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("0.0.0.0", 8081), Hub).serve_forever()
"""


def test_the_image_is_a_jupyterhub_single_user_server(containers: Containers) -> None:
    """As a spawner starts it: JUPYTERHUB_* variables and the image's own command; /api answers under
    the user's prefix, and the Spark UI link in a notebook goes through the hub's proxy."""
    containers.run("hub", ["python", "-c", HUB_API])
    hub = {
        "JUPYTERHUB_API_TOKEN": secrets.token_hex(16),
        "JUPYTERHUB_USER": "alice",
        "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-alice",
        "JUPYTERHUB_API_URL": f"http://{containers.label}-hub:8081/hub/api",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/alice/",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "/user/alice/oauth_callback",
    }
    container = containers.run("singleuser", [], environment=hub, ports={"8888/tcp": ("127.0.0.1", None)})
    wait_healthy(container)
    version = json.load(urllib.request.urlopen(f"http://127.0.0.1:{published(container, '8888/tcp')}/user/alice/api", timeout=10))
    assert "version" in version
    banner = container.exec_run(
        [
            "python",
            "-c",
            (
                "from jupyter_client.manager import start_new_kernel\n"
                "km, kc = start_new_kernel(kernel_name='pyspark_python3', startup_timeout=300)\n"
                "kc.execute_interactive('n = spark.range(1).count()', timeout=300, output_hook=lambda m: print(m['content'].get('data', {}).get('text/plain', '')))\n"
                "km.shutdown_kernel(now=True)\n"
            ),
        ]
    )
    assert "Spark UI /user/alice/proxy/4040/jobs/" in banner.output.decode(errors="replace"), banner.output.decode(errors="replace")[-2000:]
