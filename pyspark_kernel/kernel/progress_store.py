"""What the driver's status store says of one cell's jobs and stages: the facts of the full job view.

The status tracker (progress_reader.py) knows task counts only. The status store is what the Spark UI and
its REST API read: a job's call site and times, a stage's input, output, shuffle and spill bytes, its
status (skipped included) and failed tasks' reasons. Each job or stage comes over py4j as the REST
API's JSON, in one call (``ObjectMapper.writeValueAsString``), where reading its fields would take a round
trip each: measured at 0.5 ms per stage on 2 cores. A poll reads only what can still change.
"""

from __future__ import annotations

import json
from typing import Any

from pyspark_kernel.kernel.progress_display import FINISHED, CellProgress, JobProgress, StageProgress
from pyspark_kernel.kernel.progress_reader import EARLIER_MS, int_array_reader


class StatusStoreReader:
    """Reads one job group's jobs from the driver's status store into a CellProgress (``full`` set).

    The job group spans cells, so the reader remembers the jobs earlier cells of the group ran, and a
    cell's view shows only its own.
    """

    def __init__(self, context: Any) -> None:
        self.context = context
        self._store: Any = None
        self._tracker: Any = None
        self._write: Any = None  # the JVM's ObjectMapper.writeValueAsString, as the REST API configures it
        self._ints: Any = None
        self._failed_only: Any = None  # a java.util.List holding TaskStatus.FAILED, for the first failure
        self._earlier_group: str | None = None
        self._earlier_jobs: set[int] = set()
        self._java_error: type[Exception] = Exception  # py4j's, once a cell is polled: a Connect-only install has no py4j

    def begin(self, job_group: str) -> None:
        if self._store is None:
            from py4j.protocol import Py4JJavaError

            self._java_error = Py4JJavaError
            context, jvm = self.context, self.context._jvm
            mapper = jvm.com.fasterxml.jackson.databind.ObjectMapper()
            mapper.registerModule(getattr(getattr(jvm.com.fasterxml.jackson.module.scala, "DefaultScalaModule$"), "MODULE$"))
            failed_only = jvm.java.util.ArrayList()
            failed_only.add(jvm.org.apache.spark.status.api.v1.TaskStatus.FAILED)
            self._tracker, self._ints = context._jsc.statusTracker(), int_array_reader(context)
            self._write, self._failed_only = mapper.writeValueAsString, failed_only
            self._store = context._jsc.sc().statusStore()
        if job_group != self._earlier_group:
            self._earlier_group, self._earlier_jobs = job_group, set()

    def forget(self) -> None:
        """A poll failed: the next cell asks the JVM anew, instead of failing on the same objects."""
        self._store = None

    def poll(self, job_group: str, cell_epoch_ms: float, progress: CellProgress) -> None:
        """Update ``progress`` with the group's jobs that this cell submitted. A job's JSON is read before
        its stages': once it says SUCCEEDED, the stages read after it are final."""
        for job_id in self._ints(self._tracker.getJobIdsForGroup(job_group)):
            if job_id in self._earlier_jobs or progress.jobs.get(job_id) in FINISHED:
                continue
            job = self._read(self._store.job, job_id)
            if job is None:
                continue  # the store has not seen the job's start yet
            submitted = job.get("submissionTime") or 0
            if job_id not in progress.jobs and 0 < submitted < cell_epoch_ms - EARLIER_MS:
                self._earlier_jobs.add(job_id)
                continue
            progress.jobs[job_id] = job["status"]
            progress.details[job_id] = JobProgress(
                job_id,
                job.get("name") or "",
                job["status"],
                seconds_after(submitted, cell_epoch_ms),
                seconds_after(job.get("completionTime"), cell_epoch_ms),
                job["stageIds"],
            )
            for stage_id in job["stageIds"]:
                known = progress.stages.get(stage_id)
                if known is None or not known.settled or (job["status"] in FINISHED and known.status in ("PENDING", "ACTIVE")):
                    self._read_stage(stage_id, known, cell_epoch_ms, progress)

    def _read_stage(self, stage_id: int, known: StageProgress | None, cell_epoch_ms: float, progress: CellProgress) -> None:
        stage = self._read(self._store.lastStageAttempt, stage_id)
        if stage is None:
            return
        failed = stage["numFailedTasks"]
        failure = stage.get("failureReason") or (known.failure if known else "")
        if failed and not failure:
            failure = self._first_failure(stage_id, stage["attemptId"])
        progress.stages[stage_id] = StageProgress(
            stage_id,
            stage.get("name") or "",
            stage["numTasks"],
            stage["numCompleteTasks"],
            stage["numActiveTasks"],
            failed,
            attempt=stage["attemptId"],
            status=stage["status"],
            input_bytes=stage.get("inputBytes", 0),
            output_bytes=stage.get("outputBytes", 0),
            shuffle_read=stage.get("shuffleReadBytes", 0),
            shuffle_write=stage.get("shuffleWriteBytes", 0),
            spilled=stage.get("memoryBytesSpilled", 0) + stage.get("diskBytesSpilled", 0),
            failure=reason(failure),
            began=seconds_after(stage.get("submissionTime"), cell_epoch_ms),
            ended=seconds_after(stage.get("completionTime"), cell_epoch_ms),
        )

    def _first_failure(self, stage_id: int, attempt: int) -> str:
        """The error of the stage's first failed task (asked once a stage: kept once known)."""
        by_index = self.context._jvm.org.apache.spark.status.api.v1.TaskSorting.ID
        tasks = self._read(self._store.taskList, stage_id, attempt, 0, 1, by_index, self._failed_only)
        return str(tasks[0].get("errorMessage") or "") if tasks else ""

    def _read(self, method: Any, *args: Any) -> Any:
        """What a status store method returns, as its REST API JSON; None for what the store does not
        have (yet): it raises NoSuchElementException for a job or stage it has not seen start."""
        try:
            return json.loads(self._write(method(*args)))
        except self._java_error:
            return None


def seconds_after(epoch_ms: int | None, cell_epoch_ms: float) -> float | None:
    """A store time (epoch ms) as seconds after the cell began; None while it has not happened."""
    return None if not epoch_ms else (epoch_ms - cell_epoch_ms) / 1000


def reason(error: str) -> str:
    """A task's error in one line a person reads: a Python worker's exception (``ValueError: …``, the last
    line of its traceback) rather than the Java exception wrapping it, with no stack."""
    lines = []
    for line in error.splitlines():
        if line.startswith("\tat "):
            break
        lines.append(line)
    if "Traceback (most recent call last)" in error:
        raised = [line for line in lines if line and not line[0].isspace() and ":" in line and not line.startswith(("Traceback", "org.apache.spark"))]
        if raised:
            return raised[-1][:300]
    return (lines[0] if lines else error)[:300]
