"""A Spark Connect kernel in the notebook: progress from the server's callbacks, interrupt by tag."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import KernelHarness, connect_kernel_of, install

pytestmark = pytest.mark.slow

LONG_QUERY = "spark.range(0, 4_000_000_000, numPartitions=100).selectExpr('sum(sqrt(id))').collect()"


@pytest.fixture(scope="module")
def connect_kernel(prefix: Path, connect_server: str) -> Iterator[KernelHarness]:
    for kernel in connect_kernel_of(prefix, connect_server, "connect-notebook"):
        assert kernel.value("spark.range(3).count()") == "3"
        yield kernel


def test_connect_kernel_has_spark_and_no_local_jvm(connect_kernel: KernelHarness) -> None:
    assert "connect" in connect_kernel.value("type(spark).__module__")
    assert connect_kernel.java_children() == []
    assert connect_kernel.error("sc.parallelize([1])")["ename"] == "NotInSparkConnect"  # no sc: one message (test_connect_limits.py)


def test_a_local_mode_first_cell_runs_on_the_kernels_server_with_a_notice(prefix: Path, connect_server: str) -> None:
    """A notebook written for local mode: pyspark alone raises CANNOT_CONFIGURE_SPARK_CONNECT_MASTER at
    ``.master("local")``; in a Connect kernel the kernel's server wins and the cell says so."""
    folder = install(prefix, "--name", "connect-first-cell", "--remote", connect_server, "--replace")
    kernel = KernelHarness(folder.name)
    try:
        first = kernel.run(
            "from pyspark.sql import SparkSession\n"
            'spark = SparkSession.builder.master("local").appName("Tutorial").config("spark.sql.shuffle.partitions", "4").getOrCreate()'
        )
        assert not [output for output in first["outputs"] if output["type"] == "error"], first["outputs"]
        notices = [output["data"]["text/plain"] for output in first["outputs"] if output.get("metadata", {}).get("pyspark_kernel") == "notice"]
        assert any(".master('local') was ignored" in notice and connect_server in notice for notice in notices), first["outputs"]
        assert kernel.value("spark.range(10).count()") == "10"
        assert kernel.value('spark.conf.get("spark.sql.shuffle.partitions")') == "'4'"
        assert kernel.value("SparkSession.getActiveSession() is spark") == "True"
    finally:
        kernel.shutdown()


def test_connect_progress_display(connect_kernel: KernelHarness) -> None:
    result = connect_kernel.run("spark.range(0, 300_000_000, numPartitions=16).selectExpr('sum(sqrt(id)) as s').collect()[0].s > 0")
    kinds = [output["type"] for output in result["outputs"]]
    html = [output["data"].get("text/html", "") for output in result["outputs"] if output["type"] == "display_data"]
    assert any("pyspark-kernel-progress" in markup for markup in html), kinds
    summary = [output for output in result["outputs"] if output["type"] == "update_display_data"][-1]["data"]["text/plain"]
    assert summary.startswith("Spark: ") and " tasks in " in summary


def test_connect_interrupt_cancels_by_tag(connect_kernel: KernelHarness) -> None:
    msg_id = connect_kernel.client.execute(LONG_QUERY, stop_on_error=False)
    time.sleep(4)
    started = time.monotonic()
    connect_kernel.manager.interrupt_kernel()
    reply = connect_kernel.client.get_shell_msg(timeout=120)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = connect_kernel.client.get_shell_msg(timeout=120)
    assert reply["content"]["status"] == "error", reply["content"]
    assert time.monotonic() - started < 60, "the interrupted query ran on to its end"
    assert connect_kernel.value("spark.range(4).count()") == "4"
    # The interrupted cell's tag is gone from the thread that runs cells: only the current cell's is left.
    assert connect_kernel.value("len(spark.getTags())") == "1"


def test_unreachable_server_fails_fast_with_the_fix(prefix: Path) -> None:
    from conftest import free_port

    folder = install(prefix, "--name", "connect-nowhere", "--remote", f"sc://127.0.0.1:{free_port()}", "--replace")
    kernel = KernelHarness(folder.name)
    try:
        error = kernel.error("spark.range(1).count()", timeout=60)
        assert error["ename"] == "SparkStartError"
        assert "Nothing answers at the Spark Connect server" in error["evalue"] and "start-connect-server.sh" in error["evalue"]
    finally:
        kernel.shutdown()


def test_connect_job_view_names_the_cells_call_and_says_what_connect_does_not_report(connect_kernel: KernelHarness) -> None:
    """Connect's progress reports carry stages, tasks and bytes read: the view shows a row per query, named
    after the cell's line as classic jobs are, and says under the final table what Connect leaves out."""
    result = connect_kernel.run("total = spark.range(0, 300_000_000, numPartitions=16).selectExpr('sum(sqrt(id)) as s').collect()\ntotal[0].s > 0")
    views = [output["data"] for output in result["outputs"] if "pyspark-kernel-jobs" in output.get("data", {}).get("text/html", "")]
    assert views, [output["type"] for output in result["outputs"]]
    live, final = views[0]["text/html"], views[-1]["text/html"]
    assert 'class="pyspark-kernel-job"' in live and 'class="pyspark-kernel-stage"' in live and "pyspark-kernel-timeline" in live, live
    assert re.search(r"collect at In\[\d+\]:1<", live), live
    assert '<details class="pyspark-kernel-summary">' in final and "Spark Connect reports" in final, final
    assert views[-1]["text/plain"].startswith("Spark: 1 job, ")
