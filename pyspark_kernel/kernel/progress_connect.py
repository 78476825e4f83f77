"""Live Spark job progress for a Spark Connect session: the classic monitor's display (progress.py),
fed by the server's progress reports instead of a status tracker, which Connect sessions do not have."""

from __future__ import annotations

import sys
import time
import uuid
from types import FrameType
from typing import Any

from pyspark_kernel.kernel.progress_display import MIN_UPDATE_SECONDS, POLL_SECONDS, CellProgress, JobProgress, Publisher, StageProgress


class ConnectProgressMonitor:
    """The same display for Spark Connect, fed by the server's progress callbacks instead of polling.

    Spark Connect sessions have no status tracker; ``spark.registerProgressHandler`` calls us on the
    cell's own thread with each update of the running operation, so no thread is needed here. Its
    reports carry each stage's tasks and bytes read, and the operation's running tasks: the job view
    shows one row per operation (a "query"), its stages with their times as this kernel saw them, and
    says under the final table what Connect does not report (CONNECT_MISSING).
    """

    def __init__(self, spark: Any, publish: Publisher) -> None:
        self.spark = spark
        self.publish = publish
        self.full = False  # set per cell by cellprogress.py, as for the classic monitor
        self.ui: str | None = None
        self._progress: CellProgress | None = None
        self._operations: dict[str | None, int] = {}  # operation id -> its row's number in this cell
        self._display_id = ""
        self._shown = False
        self._last_sent = 0.0
        spark.registerProgressHandler(self)

    def begin(self, tag: str) -> None:
        self._progress = CellProgress(started=time.monotonic(), full=self.full)
        self._progress.ui = self.ui
        self._progress.missing = CONNECT_MISSING
        self._operations = {}
        self._display_id = f"pyspark-progress-{uuid.uuid4().hex}"
        self._shown = False
        self._last_sent = 0.0

    def __call__(self, stages: Any, inflight_tasks: int, operation_id: str | None, done: bool) -> None:
        progress = self._progress
        if progress is None:
            return
        now = time.monotonic()
        elapsed = now - progress.started
        number = self._operations.setdefault(operation_id, len(self._operations) + 1)
        progress.jobs[number] = "SUCCEEDED" if done else "RUNNING"
        job = progress.details.get(number)
        if job is None:
            job = progress.details[number] = JobProgress(number, cell_call_site() if progress.full else "", "RUNNING", elapsed, kind="Query")
        job.status = progress.jobs[number]
        if done and job.ended is None:
            job.ended = elapsed
        for stage in stages or ():
            running = 0 if stage.done else min(inflight_tasks, stage.num_tasks - stage.num_completed_tasks)
            known = progress.stages.get(stage.stage_id)
            began = known.began if known else elapsed
            ended = (known.ended if known and known.ended is not None else elapsed) if stage.done else None
            progress.stages[stage.stage_id] = StageProgress(
                stage.stage_id, "", stage.num_tasks, stage.num_completed_tasks, running, 0,
                status="COMPLETE" if stage.done else "ACTIVE", input_bytes=stage.num_bytes_read, began=began, ended=ended,
            )  # fmt: skip
            if stage.stage_id not in job.stage_ids:
                job.stage_ids.append(stage.stage_id)
        if progress.full:
            progress.samples.append((elapsed, inflight_tasks))
        if elapsed >= POLL_SECONDS and now - self._last_sent >= MIN_UPDATE_SECONDS:
            self.publish(progress.render(now, final=False), self._display_id, self._shown)
            self._shown, self._last_sent = True, now

    def end(self) -> None:
        progress, self._progress = self._progress, None
        if progress is not None and self._shown:
            for number, status in progress.jobs.items():
                if status == "RUNNING":  # no "done" came (the query failed or was interrupted): not running now
                    progress.jobs[number] = progress.details[number].status = "ENDED"
            self.publish(progress.render(time.monotonic(), final=True), self._display_id, True)

    def take_failure(self) -> BaseException | None:
        """Nothing polls here: the server's callbacks run in the cell's own calls, which report their errors."""
        return None

    def close(self) -> None:
        try:
            self.spark.removeProgressHandler(self)
        except Exception:
            pass


CONNECT_MISSING = (
    "Spark Connect reports each stage's tasks and bytes read, and its running tasks: not its job ids, failed "
    "tasks and their reasons, output, shuffle or spill bytes, skipped stages, nor the server's cores."
)


def cell_call_site() -> str:
    """``collect at In[3]:2`` for the Spark call the running cell made, as classic jobs are named
    (pyspark_hooks.py): read off the stack, since Connect's progress callbacks run inside that call."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        frame: FrameType | None = sys._getframe(1)
        called = ""
        while frame is not None and shell is not None:
            cell = shell.compile.format_code_name(frame.f_code.co_filename)
            if cell:
                return f"{called} at {cell[1]}:{frame.f_lineno}" if called else f"{cell[1]}:{frame.f_lineno}"
            if "pyspark" in frame.f_code.co_filename and not frame.f_code.co_name.startswith("_"):
                called = frame.f_code.co_name  # the outermost public pyspark function below the cell's line
            frame = frame.f_back
    except Exception:  # a name is a courtesy
        pass
    return ""
