"""Warm-up: once the session is up and no cell runs, the first cells' paths are warmed, invisibly, in a
job group of their own, and a cell that starts cancels it. Real kernels and JVMs; no timing asserted
(the gain is bench/run.py's row 8)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import KernelHarness, install

pytestmark = pytest.mark.slow

WARMER = "get_ipython().kernel.controller.warmer"


def warm_up_jobs(ui: str, app_id: str) -> list[dict]:
    """The warm-up's jobs, read from the Spark UI's REST API: no cell runs (a cell would cancel it)."""
    try:
        jobs = json.load(urllib.request.urlopen(f"{ui}/api/v1/applications/{app_id}/jobs", timeout=5))
    except OSError:
        return []
    return [job for job in jobs if str(job.get("jobGroup", "")).startswith("pyspark-kernel-warmup")]


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
        first = kernel.run("print(sc.uiWebUrl, sc.applicationId)")  # waits for the start; the warm-up begins after it
        ui, app_id = next(out["text"] for out in first["outputs"] if out["type"] == "stream").split()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and peek(kernel, f"{WARMER}.current is not None and {WARMER}.current.finished.is_set()") != "True":
            time.sleep(0.5)  # watched without a cell: a cell would cancel the warm-up
        jobs = warm_up_jobs(ui, app_id)
        state = kernel.value(f"w = {WARMER}.current; w.finished.wait(60), w.done, w.cancelled.is_set()")
        assert state == "(True, ['count', 'sql', 'pandas', 'udf'], False)", state
        assert {job["jobGroup"] for job in jobs} == {kernel.value("w.group").strip("'")}, jobs
        assert all(job["status"] == "SUCCEEDED" for job in jobs), jobs
        # Invisible: the cell showed the session line and its own output, nothing of the warm-up's jobs.
        shown = [out["metadata"].get("pyspark_kernel") for out in first["outputs"] if out["type"] == "display_data"]
        assert shown == ["banner"], first
    finally:
        kernel.shutdown()


def test_a_cell_that_starts_cancels_the_warm_up_and_its_jobs(warm_spec: Path) -> None:
    kernel = KernelHarness(warm_spec.name)
    try:
        kernel.run("n = spark.range(10).count()")  # the start; the warm-up begins when this cell ends
        # Sent at once: the warm-up's first query alone takes longer than this cell takes to arrive.
        state = kernel.value(f"w = {WARMER}.current; w is not None and w.cancelled.is_set()")
        assert state == "True", "the cell did not cancel the warm-up running when it started"
        assert kernel.value("w.finished.wait(60), len(w.done) < 4") == "(True, True)"
        statuses = kernel.value("[str(sc.statusTracker().getJobInfo(j).status) for j in sc.statusTracker().getJobIdsForGroup(w.group)]")
        assert "RUNNING" not in statuses, statuses
        # Idle again, it goes on with what was cut short, and stops there.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(3)
            done = kernel.value(f"sorted({WARMER}.current.done)")  # the session's, across the warm-ups cut short
            if done == str(sorted(["count", "sql", "pandas", "udf"])):
                break
        assert done == str(sorted(["count", "sql", "pandas", "udf"])), done
    finally:
        kernel.shutdown()


def test_warm_up_is_off_by_default(default_spec: Path) -> None:
    kernel = KernelHarness(default_spec.name)
    try:
        kernel.run("n = spark.range(10).count()")  # a warm-up, were it on, starts as this cell ends
        assert kernel.value(f"{WARMER}.current is None") == "True"
    finally:
        kernel.shutdown()
