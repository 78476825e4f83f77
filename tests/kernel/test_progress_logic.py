"""Progress bookkeeping with no JVM: which cell a job's display belongs to.

The status tracker here is a stand-in with the few calls ProgressMonitor makes (the JVM's
JavaSparkStatusTracker): the race under test needs one
cell to end and the next to begin before the monitor's thread wakes, which a real JVM cannot be made
to do on demand. test_notebook.py covers the display with a real JVM.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pyspark_kernel.kernel import progress
from pyspark_kernel.kernel.progress import ProgressMonitor
from pyspark_kernel.kernel.progress_display import CellProgress
from pyspark_kernel.kernel.progress_reader import StatusTrackerReader


class StandInContext:
    """Running jobs of group "g", as the JVM's JavaSparkStatusTracker tells them (``sc._jsc.statusTracker()``):
    job 1 (stage 1), submitted at ``submitted_ms``, and any added with ``submit`` (job N has stage N);
    ``calls`` counts what was asked."""

    def __init__(self, submitted_ms: float) -> None:
        self.calls: list[str] = []
        self.job_status = "RUNNING"
        self.stage = {"numTasks": 4, "numCompletedTasks": 1, "numActiveTasks": 2, "numFailedTasks": 0}
        self.submitted = {1: submitted_ms}  # job (and stage) id -> its stage's submission time

        def asked(name: str, value: Any) -> Any:
            self.calls.append(name)
            return value

        def job(job_id: int) -> SimpleNamespace:
            return SimpleNamespace(
                stageIds=lambda: asked("stageIds", [job_id]), status=lambda: SimpleNamespace(toString=lambda: asked("status", self.job_status))
            )

        def stage(stage_id: int) -> SimpleNamespace:
            return SimpleNamespace(
                name=lambda: asked("name", "count at cell"),
                submissionTime=lambda: asked("submissionTime", self.submitted[stage_id]),
                **{field: (lambda field=field: asked(field, self.stage[field])) for field in self.stage},
            )

        tracker = SimpleNamespace(
            getJobIdsForGroup=lambda group: asked("getJobIdsForGroup", list(self.submitted) if group == "g" else []),
            getJobInfo=lambda job_id: asked("getJobInfo", job(job_id)),
            getStageInfo=lambda stage_id: asked("getStageInfo", stage(stage_id)),
        )
        self._jsc = SimpleNamespace(statusTracker=lambda: asked("statusTracker", tracker))
        self._jvm = SimpleNamespace(java=SimpleNamespace(util=SimpleNamespace(Arrays=SimpleNamespace(toString=lambda ids: asked("toString", str(list(ids)))))))


def test_a_job_of_the_previous_cell_never_shows_in_the_next_one() -> None:
    """Run All: the next cell begins before the monitor's thread wakes, while the first cell's job 1 still
    runs. The next cell shows its own job 2, alone: the monitor polled it and left job 1 out (a monitor
    that showed nothing at all would not pass)."""
    first_cell: list[str] = []
    second_cell: list[str] = []
    context = StandInContext(submitted_ms=time.time() * 1000)
    monitor = ProgressMonitor(context, lambda data, *_: first_cell.append(data["text/plain"]))
    try:
        monitor.begin("g")  # the first cell submits job 1 and ends before the first poll
        time.sleep(0.1)
        monitor.publish = lambda data, *_: second_cell.append(data["text/plain"])
        with monitor._lock:  # Run All: the next cell begins, in the same group, before the thread wakes
            monitor.end()
            time.sleep(0.05)
            monitor.begin("g")
        time.sleep(0.2)
        context.submitted[2] = time.time() * 1000  # the second cell's own job
        time.sleep(1.4)  # polls of the second cell while both jobs run
        monitor.end()
    finally:
        monitor.close()
    assert second_cell, "the second cell's own job was never shown"
    assert all("Spark: 1 job, 1 stage" in text and "Stage 1:" not in text for text in second_cell), (
        f"the first cell's job was shown in the second cell: {second_cell}"
    )
    assert "Stage 2:" in second_cell[0], second_cell
    assert first_cell == [], "a cell that ended before the first poll shows nothing"


def test_a_cells_own_job_is_shown_and_ends_in_its_summary() -> None:
    shown: list[str] = []
    monitor = ProgressMonitor(StandInContext(submitted_ms=time.time() * 1000 + 500), lambda data, *_: shown.append(data["text/plain"]))
    try:
        monitor.begin("g")
        time.sleep(1.3)
        monitor.end()
    finally:
        monitor.close()
    assert shown and shown[-1].startswith("Spark: 1 job, 1 stage, 1/4 tasks"), shown


def context_switches(thread_id: int | None) -> int:
    """How often the OS switched the thread out because it waited: each wake-up of a sleeping thread is one."""
    status = Path(f"/proc/self/task/{thread_id}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("voluntary_ctxt_switches")))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads a thread's context switches from Linux's /proc")
def test_quick_cells_cost_no_jvm_call_and_do_not_wake_the_monitors_thread() -> None:
    """Row 3 of the bench: a cell that runs no Spark job must cost what a plain kernel's does. Each
    wake-up of the monitor's thread took the GIL from the cell's thread, and each call into the JVM
    (the status tracker) a round trip to it."""
    context = StandInContext(submitted_ms=time.time() * 1000)
    calls = context.calls
    monitor = ProgressMonitor(context, lambda data, *_: None)
    try:
        time.sleep(0.1)  # the thread is up and idle
        before = context_switches(monitor._thread.native_id)
        for _ in range(100):  # Run All over 100 cells like `1+1`
            monitor.begin("g")
            time.sleep(0.001)
            monitor.end()
        woken = context_switches(monitor._thread.native_id) - before
    finally:
        monitor.close()
    assert calls == [], f"quick cells called into the JVM: {calls[:5]}…"
    assert woken < 20, f"100 quick cells woke the progress thread {woken} times"


def test_a_poll_asks_nothing_more_of_a_finished_job_or_a_stage_whose_tasks_all_succeeded() -> None:
    """Bench row 4: each JVM call takes CPU from the job's tasks. Once the tracker says a stage's tasks
    all succeeded, its stage info is not asked again; once it says the job SUCCEEDED, the job is not."""
    context = StandInContext(submitted_ms=time.time() * 1000 + 500)
    reader = StatusTrackerReader(context)
    reader.begin("g")
    cell = CellProgress(started=time.monotonic())
    reader.poll("g", time.time() * 1000, cell)
    assert context.calls.count("getStageInfo") == 2, "a new job: its submission time, then its stage"
    context.stage.update(numCompletedTasks=4, numActiveTasks=0)
    reader.poll("g", time.time() * 1000, cell)
    assert cell.stages[1].complete and cell.summary(time.monotonic()).startswith("Spark: 1 job, 1 stage, 4/4 tasks")
    context.calls.clear()
    reader.poll("g", time.time() * 1000, cell)
    assert "getStageInfo" not in context.calls and "getJobInfo" in context.calls, context.calls
    context.job_status = "SUCCEEDED"
    reader.poll("g", time.time() * 1000, cell)
    context.calls.clear()
    reader.poll("g", time.time() * 1000, cell)
    assert context.calls == ["getJobIdsForGroup", "toString"], context.calls


def test_a_failed_poll_is_kept_for_the_cell_once_and_the_next_cell_asks_the_jvm_anew() -> None:
    """A poll that fails (a fault of the poll's code, or a JVM object gone) ends that cell's display; the
    monitor keeps the first failure for the controller to tell the cell once, and reads the tracker
    again for the next cell instead of failing on the same object for the rest of the session."""
    context = StandInContext(submitted_ms=time.time() * 1000 + 60_000)  # a job of whichever cell runs
    tracker = context._jsc.statusTracker()
    failing = SimpleNamespace(**vars(tracker))
    failing.getJobIdsForGroup = lambda group: (_ for _ in ()).throw(RuntimeError("tracker gone"))
    trackers = iter([failing, tracker])
    context._jsc = SimpleNamespace(statusTracker=lambda: next(trackers))
    shown: list[str] = []
    monitor = ProgressMonitor(context, lambda data, *_: shown.append(data["text/plain"]))
    try:
        monitor.begin("g")
        time.sleep(progress.POLL_SECONDS + 0.5)
        monitor.end()
        failure = monitor.take_failure()
        assert isinstance(failure, RuntimeError) and str(failure) == "tracker gone"
        assert monitor.take_failure() is None, "a failure is told once"
        assert not shown
        monitor.begin("g")
        time.sleep(progress.POLL_SECONDS + 0.5)
        monitor.end()
        assert shown and shown[-1].startswith("Spark: 1 job"), shown
        assert monitor.take_failure() is None
    finally:
        monitor.close()
