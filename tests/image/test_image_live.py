"""The image against a real Docker engine: build, run, health, user, token, a notebook, the compose cluster.

These run wherever an engine answers (docker.from_env().ping()) and skip with the reason elsewhere, as
on the machines this project is developed on, which have only the docker client.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("IMAGE", "pyspark-kernel:test")
pytestmark = pytest.mark.image


@pytest.fixture(scope="module")
def engine() -> Any:
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as error:  # no engine: the client alone cannot build or run anything
        pytest.skip(f"no Docker engine answers here (docker.from_env().ping() failed: {error})")
    return client


@pytest.fixture(scope="module")
def image(engine: Any) -> str:
    sha = os.environ.get("GRAPHFRAMES_SHA256")
    if not sha:
        pytest.skip("set GRAPHFRAMES_SHA256 to the sha256 of the GraphFrames jar to build the image")
    subprocess.run(["make", "image", f"IMAGE={IMAGE}", f"GRAPHFRAMES_SHA256={sha}"], cwd=REPO, check=True, timeout=3600)
    return IMAGE


@pytest.fixture(scope="module")
def notebook(engine: Any, image: str) -> Iterator[tuple[Any, int]]:
    container = engine.containers.run(image, detach=True, environment={"JUPYTER_TOKEN": "test-token"}, ports={"8888/tcp": ("127.0.0.1", None)})
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            container.reload()
            if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                break
            time.sleep(2)
        else:
            pytest.fail(f"the container did not become healthy: {container.logs()[-2000:]!r}")
        port = int(container.attrs["NetworkSettings"]["Ports"]["8888/tcp"][0]["HostPort"])
        yield container, port
    finally:
        container.remove(force=True)


def test_runs_as_a_non_root_user(notebook: tuple[Any, int]) -> None:
    container, _ = notebook
    assert container.exec_run("id -u").output.decode().strip() == "1000"


def test_token_is_required(notebook: tuple[Any, int]) -> None:
    _, port = notebook
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernelspecs", timeout=10)
    assert refused.value.code == 403
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/kernelspecs", headers={"Authorization": "token test-token"})
    specs = json.load(urllib.request.urlopen(request, timeout=10))
    assert specs["default"] == "pyspark_python3" and "pyspark_python3" in specs["kernelspecs"]


def test_notebook_runs_spark_and_graphframes(notebook: tuple[Any, int]) -> None:
    container, _ = notebook
    script = (
        "from jupyter_client.manager import start_new_kernel\n"
        "km, kc = start_new_kernel(kernel_name='pyspark_python3')\n"
        "code = \"from graphframes import GraphFrame\\n"
        "v = spark.createDataFrame([('a',), ('b',)], ['id'])\\n"
        "e = spark.createDataFrame([('a', 'b')], ['src', 'dst'])\\n"
        "print(spark.range(10).count(), GraphFrame(v, e).inDegrees.collect()[0].inDegree)\"\n"
        "reply = kc.execute_interactive(code, timeout=300, output_hook=lambda m: print(m['content'].get('text', ''), end=''))\n"
        "km.shutdown_kernel()\n"
    )
    result = container.exec_run(["python", "-c", script])
    assert result.exit_code == 0 and "10 1" in result.output.decode(), result.output.decode()[-2000:]


def test_compose_cluster_runs_jobs_on_workers(engine: Any, image: str) -> None:
    env = {**os.environ, "IMAGE": image, "JUPYTER_TOKEN": "test-token"}
    subprocess.run(["make", "compose-up", f"IMAGE={image}"], cwd=REPO, env=env, check=True, timeout=600)
    try:
        deadline = time.monotonic() + 180
        workers = []
        while time.monotonic() < deadline and len(workers) < 2:
            try:
                workers = json.load(urllib.request.urlopen("http://127.0.0.1:8080/json/", timeout=5)).get("workers", [])
            except OSError:
                pass
            time.sleep(2)
        assert len(workers) == 2, "both workers registered with the master"
        run = subprocess.run(
            ["docker", "compose", "-f", "docker/compose.yaml", "exec", "-T", "notebook", "python", "-c",
             "from jupyter_client.manager import start_new_kernel\n"
             "km, kc = start_new_kernel(kernel_name='pyspark_python3')\n"
             "kc.execute_interactive(\"print(sc.master, sc.parallelize(range(100), 4).sum(), len(sc._jsc.sc().getExecutorMemoryStatus()) - 1)\", timeout=300,"
             " output_hook=lambda m: print(m['content'].get('text', ''), end=''))\n"
             "km.shutdown_kernel()\n"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
        )
        assert "spark://master:7077 4950 2" in run.stdout, run.stdout + run.stderr
    finally:
        subprocess.run(["make", "compose-down", f"IMAGE={image}"], cwd=REPO, env=env, timeout=300)
