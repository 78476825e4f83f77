"""The notebook experience with a real kernel and JVM: progress, interrupt, UI link, magics, recovery."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import KernelHarness, install

from pyspark_kernel.kernel import uiprotect

pytestmark = pytest.mark.slow

MULTI_STAGE = (
    "from pyspark.sql import functions as F\n"
    "spark.range(0, 30_000_000, numPartitions=24).select((F.col('id') % 7).alias('k'), F.sqrt('id').alias('v'))"
    ".groupBy('k').agg(F.sum('v')).orderBy('k').collect()[0].k"
)
LONG_JOB = "spark.range(0, 4_000_000_000, numPartitions=200).selectExpr('sum(sqrt(id))').collect()"


@pytest.fixture(scope="module")
def kernel(default_spec: Path) -> Iterator[KernelHarness]:
    harness = KernelHarness(default_spec.name, extra_env={"JPY_SESSION_NAME": "work/analysis.ipynb"})
    harness.value("spark.range(1).count()")  # the session is up: later cells run in its job group
    yield harness
    harness.shutdown()


def displays(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [output for output in result["outputs"] if output["type"] == kind]


def wait_no_active_jobs(kernel: KernelHarness, seconds: float = 15) -> str:
    deadline = time.monotonic() + seconds
    active = kernel.value("sc.statusTracker().getActiveJobsIds()")
    while active != "[]" and time.monotonic() < deadline:
        time.sleep(0.5)
        active = kernel.value("sc.statusTracker().getActiveJobsIds()")
    return active


# -- progress --------------------------------------------------------------------------------------
def test_progress_updates_in_place_and_ends_in_a_summary(kernel: KernelHarness) -> None:
    result = kernel.run(MULTI_STAGE)
    first = displays(result, "display_data")
    updates = displays(result, "update_display_data")
    progress = [output for output in first if "pyspark-kernel-progress" in output["data"].get("text/html", "")]
    assert len(progress) == 1, result["outputs"]
    display_id = progress[0]["transient"]["display_id"]
    assert updates and all(update["transient"]["display_id"] == display_id for update in updates)
    summary = updates[-1]["data"]["text/plain"]
    assert summary.startswith("Spark: ") and " jobs, " in summary and " stages, " in summary and " tasks in " in summary
    done, total = summary.split(" tasks")[0].rsplit(" ", 1)[1].split("/")
    assert done == total and int(total) > 0, summary
    assert displays(result, "execute_result")[0]["data"]["text/plain"] == "0"


def test_no_progress_for_cells_without_jobs_or_when_off(kernel: KernelHarness) -> None:
    quiet = kernel.run("sum(range(10**6))")
    assert not displays(quiet, "display_data") and not displays(quiet, "update_display_data")
    kernel.run("%spark progress off")
    try:
        off = kernel.run(MULTI_STAGE)
        assert not displays(off, "display_data") and not displays(off, "update_display_data")
    finally:
        kernel.run("%spark progress full")


# -- interrupt -------------------------------------------------------------------------------------
# Interrupts during planning, before the first job, are in test_shared_session.py (with a job that would
# run a minute): a job that ends by itself in 15 s cannot show that an early interrupt stopped it.
def test_interrupt_cancels_the_cells_jobs_and_the_session_stays(kernel: KernelHarness) -> None:
    reply = kernel.interrupt(LONG_JOB, 3.0)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply.get("traceback")
    assert wait_no_active_jobs(kernel) == "[]", "the interrupted cell's job kept running"
    assert kernel.value("spark.range(5).count()") == "5"


# -- Spark UI link and app name --------------------------------------------------------------------
def test_app_is_named_after_the_notebook(kernel: KernelHarness) -> None:
    assert kernel.value("sc.appName") == "'work/analysis.ipynb'"


def test_ui_links_of_two_concurrent_kernels_are_their_own(default_spec: Path, kernel: KernelHarness) -> None:
    other = KernelHarness(default_spec.name)
    try:
        first = other.run("spark.sparkContext.uiWebUrl")
        banner = next(output["data"] for output in displays(first, "display_data") if output["metadata"].get("pyspark_kernel") == "banner")
        url = displays(first, "execute_result")[0]["data"]["text/plain"].strip("'")
        assert banner["text/plain"].endswith(f"Spark UI {url}") and f'href="{url}"' in banner["text/html"]
        mine = kernel.value("sc.uiWebUrl").strip("'")
        assert url.rsplit(":", 1)[1] != mine.rsplit(":", 1)[1], "two kernels share a Spark UI port"
    finally:
        other.shutdown()


def test_the_ui_token_follows_the_port_spark_bound(prefix: Path) -> None:
    """The port chosen for the UI was taken before Spark bound it (here by this test's socket; in life by
    a kernel of another Jupyter server or user): Spark binds a later one, which the kernel's route file
    records, and nothing leads to the chosen port, so its holder is never sent the token.
    test_isolation follows the UI's links through a real server's route."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        chosen = holder.getsockname()[1]
        folder = install(prefix, "--name", "ui-port-taken", "--conf", f"spark.ui.port={chosen}", "--replace")
        kernel = KernelHarness(folder.name)
        try:
            url = kernel.value("sc.uiWebUrl").strip("'")
            bound = int(url.rsplit(":", 1)[1])
            assert bound != chosen, url
            assert uiprotect.read_token(bound) is not None, "no route file for the port the UI bound: a link by port would answer 404"
            assert uiprotect.read_token(chosen) is None, "the chosen port, another program's, must lead nowhere"
        finally:
            kernel.shutdown()


def test_ui_link_and_proxy_base_behind_a_proxy(prefix: Path) -> None:
    folder = install(prefix, "--name", "behind-proxy", "--env", "PYSPARK_KERNEL_UI_PROXY", "/user/alice/proxy/", "--replace")
    kernel = KernelHarness(folder.name)
    try:
        first = kernel.run("spark.sparkContext.uiWebUrl")
        port = displays(first, "execute_result")[0]["data"]["text/plain"].strip("'").rsplit(":", 1)[1]
        banner = next(output["data"]["text/plain"] for output in displays(first, "display_data") if output["metadata"].get("pyspark_kernel") == "banner")
        assert banner.endswith(f"Spark UI /user/alice/proxy/{port}/jobs/")
        assert kernel.value("spark.conf.get('spark.ui.proxyBase')") == f"'/user/alice/proxy/{port}'"
    finally:
        kernel.shutdown()


# -- magics and display ----------------------------------------------------------------------------
def test_spark_status_magic(kernel: KernelHarness) -> None:
    text = "".join(output["text"] for output in kernel.run("%spark")["outputs"] if output["type"] == "stream")
    for needle in ("state: ready", "Spark 4.3", "master: local[*]", "app id: local-", "Spark UI: http://", "executors: ", "progress: full"):
        assert needle in text, text


def test_sql_magic_shows_a_table_and_stores_the_dataframe(kernel: KernelHarness) -> None:
    result = kernel.run("%%sql -o evens -n 3\nSELECT id, id * 2 AS twice FROM range(10)")
    table = displays(result, "display_data")[-1]["data"]
    assert ">bigint</small></th>" in table["text/html"] and "first 3 of more rows" in table["text/html"]
    assert table["text/plain"].endswith("|2  |4    |\n+---+-----+\nonly showing top 3 rows"), table["text/plain"]  # values whole: left-aligned
    assert kernel.value("evens.count()") == "10"
    ddl = kernel.run("%%sql\nCREATE OR REPLACE TEMP VIEW v AS SELECT 1 AS one")
    assert not [output for output in ddl["outputs"] if output["type"] in ("error", "display_data")]
    assert kernel.value("spark.table('v').first().one") == "1"


def test_dataframes_render_as_html_tables(kernel: KernelHarness) -> None:
    shown = displays(kernel.run("spark.range(3)"), "execute_result")[0]["data"]
    assert "<table" in shown["text/html"] and "|id|" in shown["text/plain"].replace(" ", "")


def test_jvm_log_stays_out_of_cells(kernel: KernelHarness) -> None:
    kernel.run("%spark loglevel INFO")
    try:
        result = kernel.run("spark.range(100).count()")
        streams = "".join(output["text"] for output in result["outputs"] if output["type"] == "stream")
        assert "INFO" not in streams and "log4j" not in streams
    finally:
        kernel.run("%spark loglevel WARN")


def test_conf_restart_merges_and_keeps_python_state(kernel: KernelHarness) -> None:
    kernel.run("kept = 41")
    kernel.run("%spark conf spark.sql.shuffle.partitions=7")
    kernel.run("%spark conf spark.sql.session.timeZone=UTC")
    assert kernel.value("spark.conf.get('spark.sql.shuffle.partitions'), spark.conf.get('spark.sql.session.timeZone')") == "('7', 'UTC')"
    assert kernel.value("kept + 1") == "42"
    assert kernel.value("spark.range(3).count()") == "3"


def test_stop_then_restart(kernel: KernelHarness) -> None:
    kernel.run("%spark stop")
    error = kernel.error("spark.range(1).count()")
    assert error["ename"] == "SparkStartError" and "%spark restart" in error["evalue"]
    kernel.run("%spark restart")
    assert kernel.value("spark.range(2).count()") == "2"


def test_killed_jvm_gives_a_clear_error_and_restart_recovers(default_spec: Path) -> None:
    kernel = KernelHarness(default_spec.name)
    try:
        kernel.value("kept = 'python state'; spark.range(1).count()")
        for jvm in kernel.java_children():
            jvm.kill()
        time.sleep(1)
        error = kernel.error("spark.range(3).count()")
        assert error["ename"] == "SparkJVMGone" and "%spark restart" in error["evalue"]
        restarted = kernel.run("%spark restart")
        assert not [output for output in restarted["outputs"] if output["type"] == "error"], restarted
        assert kernel.value("kept, spark.range(4).count()") == "('python state', 4)"
    finally:
        kernel.shutdown()


def test_java_errors_show_as_usual(kernel: KernelHarness) -> None:
    error = kernel.error("spark.sql('SELECT no_such_column FROM range(1)').collect()")
    assert error["ename"] == "AnalysisException" and "no_such_column" in error["evalue"]
    failed = kernel.error("sc.parallelize([1]).map(lambda x: 1 / 0).collect()")
    assert failed["ename"] in ("Py4JJavaError", "PythonException") and "ZeroDivisionError" in "".join(failed["traceback"])
