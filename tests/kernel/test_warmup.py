"""Warm-up: once the session is up and no cell runs, the first cells' paths are warmed, invisibly, in a
job group of their own, and a cell that starts cancels it. On by default for local masters (a cluster only
with PYSPARK_KERNEL_WARMUP=on: tests/test_cluster.py), off with PYSPARK_KERNEL_WARMUP=off. Real
kernels and JVMs; no timing asserted (the gain is bench/run.py's row 8)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import KernelHarness, install

from pyspark_kernel.kernel.warmup import NAMES, RESUME_IDLE_SECONDS

pytestmark = pytest.mark.slow

WARMER = "get_ipython().kernel.controller.warmer"


# Every job of the application as (group, status), from the JVM's status store (what the UI's job list
# shows; the UI itself now wants a token, kernel/uiprotect.py).
ALL_JOBS = "[(j.jobGroup().get() if j.jobGroup().isDefined() else '', str(j.status())) for jobs in [sc._jsc.sc().statusStore().jobsList(None)] for j in map(jobs.apply, range(jobs.size()))]"


def peek(kernel: KernelHarness, expression: str) -> str:
    """``expression``'s repr through a silent execute, as a frontend's variable inspector asks: no
    cell runs, so nothing is cancelled."""
    msg_id = kernel.client.execute("", silent=True, store_history=False, user_expressions={"value": expression})
    while True:
        reply = kernel.client.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]["user_expressions"]["value"]["data"]["text/plain"]


@pytest.fixture(scope="module")
def warm_spec(prefix: Path) -> Path:
    return install(prefix, "--name", "warm-up", "--env", "PYSPARK_KERNEL_WARMUP", "on", "--replace")


def test_an_idle_session_is_warmed_in_a_group_of_its_own(warm_spec: Path) -> None:
    kernel = KernelHarness(warm_spec.name)
    try:
        first = kernel.run("print(sc.applicationId)")  # waits for the start; the warm-up begins after it
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and peek(kernel, f"{WARMER}.current is not None and {WARMER}.current.finished.is_set()") != "True":
            time.sleep(0.5)  # watched without a cell: a cell would cancel the warm-up
        jobs = [(group, status) for group, status in eval(peek(kernel, ALL_JOBS)) if group.startswith("pyspark-kernel-warmup")]
        state = kernel.value(f"w = {WARMER}.current; w.finished.wait(60), w.done, w.cancelled.is_set()")
        assert eval(state) == (True, list(NAMES), False), state
        assert {group for group, _ in jobs} == {kernel.value("w.group").strip("'")}, jobs
        assert all(status == "SUCCEEDED" for _, status in jobs), jobs
        # Invisible: the cell showed the session line and its own output, nothing of the warm-up's jobs.
        # (The first cell also shows its wait for the session start: waitline.py.)
        shown = [
            out["metadata"].get("pyspark_kernel")
            for out in first["outputs"]
            if out["type"] == "display_data" and "pyspark-kernel-wait" not in out["data"].get("text/html", "")
        ]
        assert shown == ["banner"], first
    finally:
        kernel.shutdown()


def test_a_cell_that_starts_cancels_the_warm_up_and_its_jobs(warm_spec: Path) -> None:
    kernel = KernelHarness(warm_spec.name)
    try:
        kernel.run("n = spark.range(10).count()")  # the start; the warm-up begins RESUME_IDLE_SECONDS after this cell
        # The warm-up's first query alone (1-2.5 s on a fresh session) takes longer than the rest of the wait.
        time.sleep(RESUME_IDLE_SECONDS + 0.3)
        state = kernel.value(f"w = {WARMER}.current; w is not None and w.cancelled.is_set()")
        assert state == "True", "the cell did not cancel the warm-up running when it started"
        assert kernel.value(f"w.finished.wait(60), len(w.done) < {len(NAMES)}") == "(True, True)"
        statuses = kernel.value("[str(sc.statusTracker().getJobInfo(j).status) for j in sc.statusTracker().getJobIdsForGroup(w.group)]")
        assert "RUNNING" not in statuses, statuses
        # Idle again, it goes on with what was cut short, and stops there. Each look is a cell, which
        # cancels the warm-up again: look seldom enough that the slowest query (the UDF's first Python
        # worker) fits between two looks on a slow machine (every 3 s, it never did there in 60 s).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(10)
            done = eval(kernel.value(f"sorted({WARMER}.current.done)"))  # the session's, across the warm-ups cut short
            if done == sorted(NAMES):
                break
        assert done == sorted(NAMES), done
    finally:
        kernel.shutdown()


# A query that closes its thread's py4j connection (as a dropped socket would; an interrupt now closes
# only the cell thread's, kernel/ipkernel.py), then a job of 50 tasks that runs for a while.
DROPPED_THEN_LONG = """
from pyspark_kernel.kernel.warmup import WarmUp
def dropped(spark):
    spark.sparkContext._gateway._gateway_client.get_thread_connection().close()
def long(spark):
    return spark.range(0, 10**11, numPartitions=50).selectExpr('sum(id % 7)').collect()
probe = WarmUp(spark, (('dropped', dropped), ('long', long))).start()
tracker, long_job, deadline = sc.statusTracker(), None, time.monotonic() + 120
while long_job is None and not probe.finished.is_set() and time.monotonic() < deadline:
    time.sleep(0.2)
    for job_id in tracker.getActiveJobsIds():
        info = tracker.getJobInfo(job_id)
        if info and any((tracker.getStageInfo(s) or stage_none).numTasks == 50 for s in info.stageIds):
            long_job = job_id
in_group = long_job is not None and long_job in tracker.getJobIdsForGroup(probe.group)
probe.cancel(); probe.finished.wait(60)
"""


def test_a_warm_up_query_after_py4j_dropped_its_connection_runs_in_its_group(warm_spec: Path) -> None:
    """The next call of a thread whose py4j connection was dropped runs on a new one, in a JVM thread
    with no job group: a warm-up that set its group only once had such jobs after an early interrupt,
    out of the reach of the cancel, still running seconds after the interrupt's reply."""
    kernel = KernelHarness(warm_spec.name)
    try:
        kernel.run("n = spark.range(10).count()")
        kernel.run("import time, types\nstage_none = types.SimpleNamespace(numTasks=0)")
        result = kernel.run(DROPPED_THEN_LONG, timeout=300)
        assert result["reply"]["status"] == "ok", result
        assert kernel.value("long_job is not None, probe.done") == "(True, ['dropped'])"
        assert kernel.value("in_group") == "True", "the warm-up's query after a dropped connection ran outside its job group"
        assert kernel.value("sc.statusTracker().getActiveJobsIds()") == "[]"
    finally:
        kernel.shutdown()


def warm_up_jobs(kernel: KernelHarness) -> list[tuple[str, str]]:
    """The application's jobs that ran in a warm-up's job group, as (group, status)."""
    return [(group, status) for group, status in eval(peek(kernel, ALL_JOBS)) if group.startswith("pyspark-kernel-warmup")]


def test_warm_up_is_on_by_default_and_off_on_request(default_spec: Path, prefix: Path) -> None:
    """The default kernelspec (no PYSPARK_KERNEL_WARMUP) runs every warm-up query once idle; one with
    =off runs none, watched for as long as the default's warm-up took, and a little longer."""
    assert "PYSPARK_KERNEL_WARMUP" not in json.loads((default_spec / "kernel.json").read_text())["env"], "the default kernelspec leaves it to the default"
    kernel = KernelHarness(default_spec.name)
    try:
        kernel.run("n = spark.range(10).count()")  # a warm-up starts RESUME_IDLE_SECONDS after this cell
        started = time.monotonic()
        while time.monotonic() < started + 120 and peek(kernel, f"{WARMER}.warmed()") != "True":
            time.sleep(0.5)  # watched without a cell: a cell would cancel the warm-up
        took = time.monotonic() - started
        done = peek(kernel, f"{WARMER}.current and sorted({WARMER}.current.done)")
        assert done == repr(sorted(NAMES)), f"the default kernel was not warmed: {done}"
        jobs = warm_up_jobs(kernel)
        assert jobs and all(status == "SUCCEEDED" for _, status in jobs), jobs
    finally:
        kernel.shutdown()
    off_spec = install(prefix, "--name", "warm-up-off", "--env", "PYSPARK_KERNEL_WARMUP", "off", "--replace")
    kernel = KernelHarness(off_spec.name)
    try:
        kernel.run("n = spark.range(10).count()")
        time.sleep(took + RESUME_IDLE_SECONDS + 2)
        assert peek(kernel, f"{WARMER}.current is None") == "True", "a warm-up began with PYSPARK_KERNEL_WARMUP=off"
        assert warm_up_jobs(kernel) == [], "warm-up jobs ran with PYSPARK_KERNEL_WARMUP=off"
    finally:
        kernel.shutdown()


def test_a_cell_right_after_another_does_not_resume_the_warm_up(warm_spec: Path) -> None:
    """Run All, or a user's next cell at once: the warm-up waits for RESUME_IDLE_SECONDS without a cell,
    so no cell cancels a query that had just begun."""
    kernel = KernelHarness(warm_spec.name)
    try:
        kernel.run("n = spark.range(10).count()")
        for _ in range(5):
            kernel.run("n = 1")
        assert peek(kernel, f"{WARMER}.current is None") == "True", "a warm-up began between cells that came at once"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and peek(kernel, f"{WARMER}.warmed()") != "True":
            time.sleep(0.5)
        assert peek(kernel, f"{WARMER}.warmed()") == "True", "idle, the session was not warmed"
    finally:
        kernel.shutdown()
