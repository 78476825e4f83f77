"""Progress bookkeeping with no JVM: which cell a job's display belongs to.

The status tracker here is a stand-in with the few calls ProgressMonitor makes (pyspark's
StatusTracker and the JVM tracker's getStageInfo for submission times): the race under test needs one
cell to end and the next to begin before the monitor's thread wakes, which a real JVM cannot be made
to do on demand. test_notebook.py covers the display with a real JVM.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from pyspark_kernel.progress import ProgressMonitor


class Option:
    def __init__(self, value: Any) -> None:
        self.value = value

    def isDefined(self) -> bool:  # noqa: N802 (Scala's Option)
        return True

    def get(self) -> Any:
        return self.value


class StandInContext:
    """One running job (id 1, stage 1) of group "g", submitted at ``submitted_ms``."""

    def __init__(self, submitted_ms: float) -> None:
        job = SimpleNamespace(stageIds=[1], status="RUNNING")
        stage = SimpleNamespace(name="count at cell", numTasks=4, numCompletedTasks=1, numActiveTasks=2, numFailedTasks=0)
        self.tracker = SimpleNamespace(
            getJobIdsForGroup=lambda group: [1] if group == "g" else [],
            getJobInfo=lambda job_id: job,
            getStageInfo=lambda stage_id: stage,
        )
        jvm_stage = SimpleNamespace(submissionTime=lambda: submitted_ms)
        jvm_tracker = SimpleNamespace(getStageInfo=lambda stage_id: Option(jvm_stage))
        self._jsc = SimpleNamespace(sc=lambda: SimpleNamespace(statusTracker=lambda: jvm_tracker))

    def statusTracker(self) -> Any:  # noqa: N802 (pyspark's name)
        return self.tracker


def test_a_job_of_the_previous_cell_never_shows_in_the_next_one() -> None:
    first_cell: list[str] = []
    second_cell: list[str] = []
    monitor = ProgressMonitor(StandInContext(submitted_ms=time.time() * 1000), lambda data, *_: first_cell.append(data["text/plain"]))
    try:
        monitor.begin("g")  # the first cell submits job 1 and ends before the first poll
        time.sleep(0.1)
        monitor.publish = lambda data, *_: second_cell.append(data["text/plain"])
        with monitor._lock:  # Run All: the next cell begins, in the same group, before the thread wakes
            monitor.end()
            time.sleep(0.05)
            monitor.begin("g")
        time.sleep(1.6)  # three polls of the second cell while job 1 still runs
        monitor.end()
    finally:
        monitor.close()
    assert second_cell == [], "the first cell's job was shown in the second cell"
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
