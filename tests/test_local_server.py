"""Kernels of ``install --remote 'local[*]'`` share one local Spark Connect server: each notebook keeps its own
session, another account cannot get in, and the server's life follows its kernels.

Real parts throughout: pip's pyspark 4.3 starts the server (its persistent local Connect server), kernels
are started with jupyter_client from a temporary prefix, the second account is a real local account.
Every test runs with its own TMPDIR, so the servers it starts are its own and not the user's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import KernelHarness, as_second_account, cli, install, wait_gone

from pyspark_kernel import localserver

pytestmark = pytest.mark.slow

IDLE_SECONDS = 6  # the kernelspec's --server-idle-timeout: short, so the test sees the stop
SLEEPY_JOB = "spark.range({n}, numPartitions={n}).selectExpr(\"java_method('java.lang.Thread', 'sleep', cast({ms} as long)) as s\").collect()"


@pytest.fixture(scope="module")
def tmpdir_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A TMPDIR of this module's own (its servers live under it); every server it holds is stopped at the end."""
    folder = tmp_path_factory.mktemp("local-server-tmp")
    folder.chmod(0o755)
    home = tmp_path_factory.mktemp("local-server-home")  # the servers' working folder (localserver.server_cwd)
    env = {"TMPDIR": str(folder), "HOME": str(home)}
    yield env
    result = cli("server", "stop", env={**os.environ, **env})
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def shared_spec(prefix: Path) -> str:
    install(prefix, "--name", "pyspark_shared", "--remote", "local[*]", "--replace")
    return "pyspark_shared"


@pytest.fixture(scope="module")
def two_notebooks(shared_spec: str, tmpdir_env: dict[str, str]) -> Iterator[tuple[KernelHarness, KernelHarness]]:
    first = KernelHarness(shared_spec, extra_env=tmpdir_env)
    second = KernelHarness(shared_spec, extra_env=tmpdir_env)
    try:
        yield first, second
    finally:
        first.shutdown()
        second.shutdown()


def server_status(env: dict[str, str]) -> list[localserver.ServerStatus]:
    """What ``pyspark-kernel server status`` reads, for the user of ``env``'s TMPDIR."""
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = env["TMPDIR"]
    import tempfile

    tempfile.tempdir = None
    try:
        return [status for status in map(localserver.status, localserver.places()) if status.pid is not None]
    finally:
        os.environ.pop("TMPDIR") if saved is None else os.environ.__setitem__("TMPDIR", saved)
        tempfile.tempdir = None


def connect_servers() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if localserver.SERVER_CLASS in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def test_two_notebooks_count_on_one_server(two_notebooks: tuple[KernelHarness, KernelHarness], tmpdir_env: dict[str, str]) -> None:
    first, second = two_notebooks
    assert first.value("spark.range(10).count()") == "10"
    assert second.value("spark.range(7).count()") == "7"
    servers = server_status(tmpdir_env)
    assert len(servers) == 1, servers
    assert servers[0].kernels == 2
    keepers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "pyspark_kernel.serverkeeper" in (p.info["cmdline"] or []) and str(servers[0].place.folder) in p.info["cmdline"]
    ]
    assert len(keepers) == 1, keepers  # one keeper however many kernels joined at once
    assert not first.java_children() and not second.java_children()  # neither kernel holds a JVM of its own
    status = cli("server", "status", env={**os.environ, **tmpdir_env})
    assert f"pid {servers[0].pid}" in status.stdout and "2 kernel(s) attached" in status.stdout


def test_a_new_notebooks_first_cell_shows_its_wait_then_its_jobs(
    shared_spec: str, tmpdir_env: dict[str, str], two_notebooks: tuple[KernelHarness, KernelHarness]
) -> None:
    from kernel.test_first_cell import SLOW_JOB, check_wait_then_jobs

    kernel = KernelHarness(shared_spec, extra_env=tmpdir_env)
    try:
        check_wait_then_jobs(kernel.run(f"len({SLOW_JOB})")["outputs"])
    finally:
        kernel.shutdown()


def test_the_job_view_on_the_shared_server_links_each_stage_to_the_servers_ui(
    two_notebooks: tuple[KernelHarness, KernelHarness], tmpdir_env: dict[str, str]
) -> None:
    """The stage ids Connect reports are the server's own, so each links to its page in the server's UI
    (here with no Jupyter server, the UI's own address); a query has no job id, so no job link."""
    import re

    result = two_notebooks[1].run("spark.range(0, 300_000_000, numPartitions=16).selectExpr('sum(sqrt(id)) as s').collect()[0].s > 0")
    views = [output["data"]["text/html"] for output in result["outputs"] if "pyspark-kernel-jobs" in output.get("data", {}).get("text/html", "")]
    assert views, [output["type"] for output in result["outputs"]]
    (status,) = server_status(tmpdir_env)
    links = re.findall(r'class="pyspark-kernel-ui-link" href="([^"]+)"', views[-1])
    assert links and all(re.fullmatch(rf"http://127\.0\.0\.1:{status.ui_port}/stages/stage/\?id=\d+&amp;attempt=0", link) for link in links), (links, status)


def test_sql_cells_on_the_shared_server(two_notebooks: tuple[KernelHarness, KernelHarness]) -> None:
    from kernel.test_sql_cell import check_sql_cells

    check_sql_cells(two_notebooks[1])


def test_completion_on_the_shared_server(two_notebooks: tuple[KernelHarness, KernelHarness]) -> None:
    from kernel.test_completion import prepare, test_a_dataframes_column_strings_complete_its_columns, test_a_sql_cell_completes_tables_views_and_their_columns

    kernel = prepare(two_notebooks[0])
    test_a_sql_cell_completes_tables_views_and_their_columns(kernel)
    test_a_dataframes_column_strings_complete_its_columns(kernel)


def test_errors_that_are_not_the_servers_show_as_ipython_shows_them(two_notebooks: tuple[KernelHarness, KernelHarness]) -> None:
    first, _ = two_notebooks  # the kernel's error handler sees every error of a shared-server kernel
    assert first.error("1/0")["ename"] == "ZeroDivisionError"
    assert first.error("spark.sql('SELECT * FROM no_such_table').collect()")["ename"] == "AnalysisException"
    assert first.error("sc.parallelize([1])")["ename"] == "NotInSparkConnect"


def test_each_notebook_keeps_its_own_session_state(two_notebooks: tuple[KernelHarness, KernelHarness]) -> None:
    first, second = two_notebooks
    first.run(
        "spark.range(3).createOrReplaceTempView('only_first')\n"
        "spark.conf.set('spark.sql.shuffle.partitions', '7')\n"
        "spark.udf.register('plus_one', lambda x: x + 1, 'long')\n"
        "spark.sql('CREATE DATABASE IF NOT EXISTS first_db')\n"
        "spark.catalog.setCurrentDatabase('first_db')"
    )
    assert first.value("spark.sql('SELECT plus_one(1)').first()[0]") == "2"
    assert first.value("spark.catalog.currentDatabase()") == "'first_db'"
    assert second.value("[t.name for t in spark.catalog.listTables()]") == "[]"
    assert second.value("spark.conf.get('spark.sql.shuffle.partitions')") == "'200'"
    assert second.value("spark.catalog.currentDatabase()") == "'default'"
    assert "plus_one" in str(second.error("spark.sql('SELECT plus_one(1)').collect()")["evalue"])
    assert first.value("spark.table('only_first').count()") == "3"


def test_relative_paths_resolve_in_the_servers_folder_whichever_notebook_started_it(
    shared_spec: str, tmpdir_env: dict[str, str], tmp_path: Path, two_notebooks: tuple[KernelHarness, KernelHarness]
) -> None:
    first, _ = two_notebooks  # the server runs: started by the module's first notebook
    elsewhere = tmp_path / "another-notebook-folder"
    elsewhere.mkdir()
    third = KernelHarness(shared_spec, extra_env=tmpdir_env, cwd=str(elsewhere))
    try:
        third.run("spark.range(3).write.mode('overwrite').parquet('relative_out')")
        assert (Path(tmpdir_env["HOME"]) / "relative_out").is_dir()
        assert not (elsewhere / "relative_out").exists()
        assert first.value("spark.read.parquet('relative_out').count()") == "3"  # the same place for every notebook
    finally:
        third.shutdown()


def test_an_interrupt_cancels_only_its_own_notebooks_work(two_notebooks: tuple[KernelHarness, KernelHarness]) -> None:
    first, second = two_notebooks
    other = second.client.execute(f"len({SLEEPY_JOB.format(n=4, ms=2000)})")  # about 4 s on 2 cores
    started = time.monotonic()
    reply = first.interrupt(SLEEPY_JOB.format(n=40, ms=1000), delay=2.0)  # about 20 s if not cancelled
    assert reply["status"] == "error"
    assert time.monotonic() - started < 15, "the interrupted cell ran on instead of being cancelled"
    deadline = time.monotonic() + 120
    while True:
        message = second.client.get_shell_msg(timeout=max(1, deadline - time.monotonic()))
        if message["parent_header"].get("msg_id") == other:
            break
    assert message["content"]["status"] == "ok", message["content"]
    assert first.value("spark.range(4).count()") == "4"


def test_the_server_is_loopback_only_and_needs_its_token(
    two_notebooks: tuple[KernelHarness, KernelHarness], tmpdir_env: dict[str, str], second_account: str
) -> None:
    (server,) = server_status(tmpdir_env)
    assert server.pid is not None
    listening = [conn.laddr for conn in psutil.Process(server.pid).net_connections("tcp") if conn.status == psutil.CONN_LISTEN]
    assert listening and all(address.ip in ("127.0.0.1", "::ffff:127.0.0.1") for address in listening), listening
    discovery = server.place.discovery
    assert discovery.stat().st_mode & 0o777 == 0o600 and server.place.folder.stat().st_mode & 0o777 == 0o700
    read = as_second_account(["cat", str(discovery)])
    assert read.returncode != 0 and "token" not in read.stdout
    probe = as_second_account(["/usr/bin/python3", "-c", PROBE_UI, str(server.ui_port)])
    assert probe.stdout.strip() in ("401", "403"), probe  # the UI behind JWSFilter: no key, no page
    no_token = subprocess.run([sys.executable, "-c", CLIENT_WITHOUT_TOKEN, str(server.port)], capture_output=True, text=True, timeout=120)
    assert "refused" in no_token.stdout, no_token.stdout + no_token.stderr


PROBE_UI = """
import sys, urllib.error, urllib.request
try:
    print(urllib.request.urlopen("http://127.0.0.1:%s/jobs/" % sys.argv[1], timeout=10).status)
except urllib.error.HTTPError as error:
    print(error.code)
"""
CLIENT_WITHOUT_TOKEN = """
import os, sys
os.environ.pop("SPARK_CONNECT_AUTHENTICATE_TOKEN", None)
from pyspark.sql import SparkSession
from pyspark.sql.connect.client.retries import DefaultPolicy
try:
    spark = SparkSession.builder.remote("sc://localhost:%s" % sys.argv[1]).getOrCreate()
    spark.client.set_retry_policies([DefaultPolicy(max_retries=0)])
    print(spark.range(3).count())
except Exception as error:
    print("refused:", type(error).__name__, str(error)[:200])
"""


def test_a_killed_server_comes_back_at_the_next_cell_which_says_what_was_lost(
    two_notebooks: tuple[KernelHarness, KernelHarness], tmpdir_env: dict[str, str]
) -> None:
    first, second = two_notebooks
    first.run("spark.range(2).createOrReplaceTempView('lost_view')")
    (server,) = server_status(tmpdir_env)
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)
    assert not wait_gone([psutil.Process(server.pid)] if psutil.pid_exists(server.pid) else [], timeout=30)
    result = first.run("spark.range(5).count()", timeout=180)
    texts = json.dumps(result["outputs"])
    assert "had stopped" in texts and "temp views" in texts, texts
    assert [output["data"]["text/plain"] for output in result["outputs"] if output["type"] == "execute_result"] == ["5"]
    assert "lost_view" in str(first.error("spark.table('lost_view').count()")["evalue"])
    assert second.value("spark.range(6).count()") == "6"
    (restarted,) = server_status(tmpdir_env)
    assert restarted.pid not in (None, server.pid) and restarted.kernels == 2


def test_a_cell_running_when_the_server_dies_fails_instead_of_hanging(two_notebooks: tuple[KernelHarness, KernelHarness], tmpdir_env: dict[str, str]) -> None:
    first, _ = two_notebooks
    msg_id = first.client.execute(SLEEPY_JOB.format(n=40, ms=1000), stop_on_error=False)
    time.sleep(3)
    (server,) = server_status(tmpdir_env)
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 90  # the client's default retries would wait about ten minutes
    while True:
        reply = first.client.get_shell_msg(timeout=max(1, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "SparkServerGone", reply["content"]  # one message, not a gRPC traceback
    assert first.value("spark.range(3).count()", timeout=180) == "3"


def server_left_by_its_only_kernel(prefix: Path, tmpdir_env: dict[str, str]) -> tuple[localserver.ServerStatus, psutil.Process]:
    """A server of its own settings (local[1], a short idle time), whose one kernel has counted and exited
    (the module's two notebooks keep theirs in use); its status and process."""
    install(prefix, "--name", "pyspark_shared_idle", "--remote", "local[1]", "--server-idle-timeout", str(IDLE_SECONDS), "--replace")
    before = {status.pid for status in server_status(tmpdir_env)}
    kernel = KernelHarness("pyspark_shared_idle", extra_env=tmpdir_env)
    try:
        assert kernel.value("spark.range(3).count()") == "3"
        (server,) = [status for status in server_status(tmpdir_env) if status.pid not in before]
    finally:
        kernel.shutdown()
    return server, psutil.Process(server.pid)


def test_the_server_stops_once_no_kernel_used_it_for_the_idle_time(prefix: Path, tmpdir_env: dict[str, str]) -> None:
    before = {status.pid for status in server_status(tmpdir_env)}
    _, process = server_left_by_its_only_kernel(prefix, tmpdir_env)
    time.sleep(IDLE_SECONDS / 2)
    assert process.is_running(), "the server stopped before its idle time was up"
    assert not wait_gone([process], timeout=IDLE_SECONDS + 60), "the server outlived its idle time"
    assert {status.pid for status in server_status(tmpdir_env)} == before


def test_a_server_whose_folder_was_removed_still_stops_after_the_idle_time(prefix: Path, tmpdir_env: dict[str, str]) -> None:
    server, process = server_left_by_its_only_kernel(prefix, tmpdir_env)
    shutil.rmtree(server.place.folder)  # as a temp cleaner would: pyspark's files, the leases, the record
    assert not wait_gone([process], timeout=IDLE_SECONDS + 60), "a server whose folder was removed ran on"


def test_server_stop_by_hand_and_other_settings_get_their_own_server(prefix: Path, shared_spec: str, tmpdir_env: dict[str, str]) -> None:
    install(prefix, "--name", "pyspark_shared_big", "--remote", "local[2]", "--driver-memory", "1g", "--replace")
    one, other = KernelHarness(shared_spec, extra_env=tmpdir_env), KernelHarness("pyspark_shared_big", extra_env=tmpdir_env)
    try:
        assert one.value("spark.range(2).count()") == "2" and other.value("spark.range(3).count()") == "3"
        servers = server_status(tmpdir_env)
        assert len(servers) == 2 and len({status.place for status in servers}) == 2  # the module's notebooks' one, and this one
        stopped = cli("server", "stop", env={**os.environ, **tmpdir_env})
        assert stopped.returncode == 0 and stopped.stdout.count("Stopped") == 2, stopped.stdout
        assert not wait_gone([psutil.Process(status.pid) for status in servers if status.pid and psutil.pid_exists(status.pid)], timeout=30)
        assert server_status(tmpdir_env) == []
    finally:
        one.shutdown()
        other.shutdown()
