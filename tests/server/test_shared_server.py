"""The shared local Spark Connect server under a real Jupyter server with pyspark-kernel's extension: each
notebook's Spark UI link opens the one server's UI through that notebook's own route, and a Jupyter server
that stops takes along the shared server its kernels left unused (no JVM left until the idle time).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import install, wait_gone
from reliability.server import JupyterServer
from reliability.test_isolation import end_session, http_get, notebook_kernel, run_text, ui_link

from pyspark_kernel import localserver

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shared-server-tmp")
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def server(isolated_jupyter: Path, own_tmp: Path) -> Iterator[JupyterServer]:
    config = isolated_jupyter / "shared_server_config.json"
    config.write_text((Path(__file__).parents[2] / "pyspark_kernel" / "etc" / "pyspark_kernel.json").read_text())
    jupyter = JupyterServer(isolated_jupyter / "shared-root", args=(f"--config={config}",), env={"TMPDIR": str(own_tmp)})
    try:
        yield jupyter
    finally:
        jupyter.stop()


def servers_under(tmp: Path) -> list[int]:
    os.environ["TMPDIR"], saved = str(tmp), os.environ.get("TMPDIR")
    import tempfile

    tempfile.tempdir = None
    try:
        return [status.pid for status in map(localserver.status, localserver.places()) if status.pid is not None]
    finally:
        if saved is None:
            os.environ.pop("TMPDIR")
        else:
            os.environ["TMPDIR"] = saved
        tempfile.tempdir = None


def test_each_notebook_opens_the_servers_ui_through_its_own_route_and_a_stopping_jupyter_stops_the_server(
    prefix: Path, isolated_jupyter: Path, server: JupyterServer, own_tmp: Path
) -> None:
    install(prefix, "--name", "pyspark_shared_route", "--remote", "local[*]", "--replace")
    base, headers, runtime = f"http://127.0.0.1:{server.port}", server.headers, isolated_jupyter / "runtime"
    notebooks = [notebook_kernel(base, headers, "pyspark_shared_route", runtime, f"shared{index}.ipynb") for index in range(2)]
    try:
        links = [ui_link(client) for _, client in notebooks]
        keys = [link.split("/")[2] for link in links]
        assert keys[0] != keys[1] and all(link == f"/pyspark-ui/{key}/jobs/" for link, key in zip(links, keys, strict=True)), links
        for link, key in zip(links, keys, strict=True):
            status, page = http_get(base + link, headers)
            assert status == 200 and "Spark Jobs" in page, (status, page[:300])
            assert f'href="/pyspark-ui/{key}/' in page, "the UI's own links stay on this notebook's route (X-Forwarded-Context)"
            assert http_get(base + link)[0] in (302, 403), "the route is behind the Jupyter server's login"
        assert run_text(notebooks[0][1], "print(spark.range(5).count())").strip() == "5"
        (pid,) = servers_under(own_tmp)
    finally:
        for session_id, client in notebooks:
            end_session(base, headers, session_id, client)
    process = psutil.Process(pid)
    assert process.is_running(), "the server outlives its last kernel for the idle time (300 s here)"
    server.stop()
    assert not wait_gone([process], timeout=60), "the stopped Jupyter server left the shared server's JVM behind"
