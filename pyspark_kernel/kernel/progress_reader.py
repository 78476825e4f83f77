"""What the JVM's status tracker says of one cell's jobs, asked for no more than the display shows.

The classic progress monitor (progress.py) polls through this while a cell runs. Every call here is a
py4j round trip that takes CPU from the job's own tasks (bench row 4), so the tracker and the reader of
int arrays are asked for once per session, and a poll skips what cannot change any more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyspark_kernel.kernel.progress_display import FINISHED, CellProgress, StageProgress

EARLIER_MS = 50  # a job submitted this long before the cell's begin belongs to an earlier cell


class StatusTrackerReader:
    """Reads one job group's jobs from a SparkContext's JVM status tracker into a CellProgress.

    The job group spans cells, so the reader remembers the jobs earlier cells of the group ran, and a
    cell's display shows only its own.
    """

    def __init__(self, context: Any) -> None:
        self.context = context
        self._tracker: Any = None  # the JVM's JavaSparkStatusTracker, asked for once: asking is a JVM call
        self._ints: Callable[[Any], list[int]] | None = None  # a JVM int[] as a list, in one call
        self._earlier_group: str | None = None
        self._earlier_jobs: set[int] = set()  # jobs of the group that earlier cells ran

    def begin(self, job_group: str) -> None:
        """A cell of ``job_group`` is to be polled: ask the JVM for the tracker unless it was already."""
        if self._tracker is None or self._ints is None:  # both, or neither: a poll needs the two
            tracker, ints = self.context._jsc.statusTracker(), int_array_reader(self.context)
            self._tracker, self._ints = tracker, ints
        if job_group != self._earlier_group:
            self._earlier_group, self._earlier_jobs = job_group, set()

    def forget(self) -> None:
        """A poll failed: the next cell asks the JVM for the tracker anew, instead of failing on the same object."""
        self._tracker = self._ints = None

    def poll(self, job_group: str, cell_epoch_ms: float, progress: CellProgress) -> None:
        """Update ``progress`` with the group's jobs that this cell submitted: the group spans cells,
        so a job whose stages were all submitted before the cell began belongs to an earlier one.

        Each JVM call is a py4j round trip that takes CPU from the job's own tasks (bench row 4), so a
        poll asks the JVM's tracker for only what the display shows (pyspark's StatusTracker asks for
        every field, and an int array one element at a time), and nothing more of a finished job or of
        a stage whose tasks all succeeded. A job's status is read before its stages: once it says
        SUCCEEDED, the stages read after it are final (Spark posts a stage's end before its job's)."""
        tracker, ints = self._tracker, self._ints
        assert ints is not None
        for job_id in ints(tracker.getJobIdsForGroup(job_group)):  # two calls, however many jobs the group has
            if job_id in self._earlier_jobs or progress.jobs.get(job_id) in FINISHED:
                continue
            job = tracker.getJobInfo(job_id)
            if job is None:
                continue
            stage_ids = ints(job.stageIds())
            if job_id not in progress.jobs and submitted_before(tracker, stage_ids, cell_epoch_ms):
                self._earlier_jobs.add(job_id)
                continue
            progress.jobs[job_id] = job.status().toString()
            for stage_id in stage_ids:
                known = progress.stages.get(stage_id)
                if known is not None and known.complete:
                    continue
                stage = tracker.getStageInfo(stage_id)
                if stage is not None:
                    progress.stages[stage_id] = StageProgress(
                        stage_id,
                        known.name if known else stage.name(),
                        stage.numTasks(),
                        stage.numCompletedTasks(),
                        stage.numActiveTasks(),
                        stage.numFailedTasks(),
                    )


def int_array_reader(context: Any) -> Callable[[Any], list[int]]:
    """A JVM int[] as a Python list in one py4j call (``Arrays.toString``, looked up once: each step of
    ``jvm.java.util.Arrays.toString`` is a round trip of its own). A py4j JavaArray is read one
    element per call: after 300 cells of a count (602 jobs) one poll took 69 ms that way, 6 ms this way."""
    to_string = context._jvm.java.util.Arrays.toString

    def ints(array: Any) -> list[int]:
        text = to_string(array)
        return [int(part) for part in text.strip("[]").split(",") if part.strip()]

    return ints


def submitted_before(tracker: Any, stage_ids: list[int], cell_epoch_ms: float) -> bool:
    """Whether a job's first submitted stage predates the cell (asked once per job)."""
    for stage_id in stage_ids:
        stage = tracker.getStageInfo(stage_id)
        if stage is not None:
            submitted: int = stage.submissionTime()  # epoch ms; 0 while not yet submitted
            if submitted > 0:
                return submitted < cell_epoch_ms - EARLIER_MS
    return False
