"""Spark Connect kernelspecs: what install writes, what check finds, and a live kernel on a live server.

The server is conftest's ``connect_server`` (pip's pyspark, ``sbin/start-connect-server.sh`` on
127.0.0.1, one per test session). The kernel must run no JVM of its own. Progress and interrupt by tag
are tested in test_connect_notebook.py.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import KernelHarness, cli, connect_kernel_of, free_port, install


def test_install_remote_writes_spark_remote_and_needs_no_java(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path / "no-java-here")}
    env.pop("JAVA_HOME", None)
    result = cli("install", "--prefix", str(tmp_path), "--name", "connect", "--remote", "sc://127.0.0.1:15002", env=env)
    assert result.returncode == 0, result.stderr
    spec = json.loads((tmp_path / "share" / "jupyter" / "kernels" / "connect" / "kernel.json").read_text())
    assert spec["env"]["SPARK_REMOTE"] == "sc://127.0.0.1:15002"
    assert "PYSPARK_SUBMIT_ARGS" not in spec["env"] and "SPARK_LOCAL_IP" not in spec["env"]
    meta = spec["metadata"]["pyspark_kernel"]
    assert meta["master"] == "sc://127.0.0.1:15002" and meta["java"] is None


def test_check_says_when_nothing_listens_at_remote(tmp_path: Path) -> None:
    install(tmp_path, "--name", "connect-down", "--remote", f"sc://127.0.0.1:{free_port()}")
    checked = cli("check", "connect-down", "--prefix", str(tmp_path))
    assert checked.returncode == 1, checked.stdout
    assert "SKIP  Java" in checked.stdout and "OK    Connect client" in checked.stdout
    assert "FAIL  Connect server" in checked.stdout and "Nothing answers" in checked.stdout and "start-connect-server.sh" in checked.stdout


@pytest.fixture(scope="module")
def connect_kernel(prefix: Path, connect_server: str) -> Iterator[KernelHarness]:
    yield from connect_kernel_of(prefix, connect_server, "connect-plain")


@pytest.mark.slow
def test_connect_session_runs_jobs_without_a_local_jvm(connect_kernel: KernelHarness) -> None:
    import pyspark

    assert connect_kernel.value("spark.version") == repr(pyspark.__version__)
    assert connect_kernel.value("type(spark).__module__") == "'pyspark.sql.connect.session'"
    assert connect_kernel.value("spark.range(100).selectExpr('sum(id) AS s').first().s") == "4950"
    assert connect_kernel.value("spark.createDataFrame([(1, 'a'), (2, 'b')], ['n', 's']).filter('n > 1').toPandas().s.tolist()") == "['b']"
    assert connect_kernel.java_children() == [], "a Connect kernel must not start a JVM"
    assert connect_kernel.value("'sc' in dir()") == "False"


def grpc_loaded(pid: int) -> bool:
    """Whether the process has loaded gRPC's C extension, which the Spark Connect client imports."""
    return "cygrpc" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads a process's loaded libraries from Linux's /proc")
def test_the_connect_client_loads_after_the_handshake_and_the_session_starts_by_itself(prefix: Path, connect_server: str) -> None:
    """Bench row 7: the client's imports (grpc, pyarrow, pandas) take a second of CPU, which the kernel's
    handshake must not wait for; yet the session still starts while the user types, with no cell.
    (time.monotonic is one clock for all processes on Linux: the kernel's start time compares with ours.)"""
    folder = install(prefix, "--name", "connect-deferred", "--remote", connect_server, "--replace")
    kernel = KernelHarness(folder.name)  # returns once kernel_info is answered and IOPub heard from
    try:
        handshake_done = time.monotonic()
        deadline = handshake_done + 120
        while not grpc_loaded(kernel.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        loaded_alone = grpc_loaded(kernel.pid)  # before any cell: a cell would start the session itself
        session = "get_ipython().kernel.controller.session"
        state, started_at = eval(kernel.value(f"{session}.get() is not None, {session}.starter.started_at"))
    finally:
        kernel.shutdown()
    assert loaded_alone and state, "the Connect session did not start by itself"
    assert started_at > handshake_done, f"the Connect start began {handshake_done - started_at:.2f} s before the handshake ended"


@pytest.mark.slow
def test_check_on_a_live_connect_kernelspec(prefix: Path, connect_server: str, connect_kernel: KernelHarness) -> None:
    checked = cli("check", "connect-plain", "--prefix", str(prefix))
    assert checked.returncode == 0, checked.stdout
    assert "OK    Connect client" in checked.stdout and "OK    Connect server" in checked.stdout and "SKIP  Java" in checked.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "remote_of, needle",
    [
        (lambda server: f"sc://127.0.0.1:{free_port()}", "Nothing answers at the Spark Connect server"),
        (lambda server: f"{server}/;session_id=not-a-uuid", "Could not connect to the Spark Connect server"),
    ],
    ids=["unreachable", "bad-url-parameter"],
)
def test_bad_remote_gives_a_clear_spark_start_error(prefix: Path, connect_server: str, remote_of, needle: str) -> None:
    remote = remote_of(connect_server)
    folder = install(prefix, "--name", "connect-bad", "--remote", remote, "--replace")
    kernel = KernelHarness(folder.name)
    try:
        error = kernel.error("spark.range(1).count()", timeout=60)
        assert error["ename"] == "SparkStartError", error
        assert needle in error["evalue"] and "Fix:" in error["evalue"], error["evalue"]
        assert kernel.value("1 + 1") == "2", "the kernel stays usable"
        assert kernel.java_children() == []
    finally:
        kernel.shutdown()
