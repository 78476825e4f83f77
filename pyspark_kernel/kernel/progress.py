"""Live Spark job progress for the running cell, from ``sc.statusTracker()``, with no frontend extension.

One long-lived thread polls the tracker while a cell runs and renders a display (HTML with a
text/plain fallback) that it updates in place; the cell ends with a one-line summary. It shows only
the jobs of the cell's job group submitted since the cell began, so jobs from other threads or earlier
cells never appear, and nothing is shown for cells that run no job or end before the first poll. Updates are throttled
to a bounded rate whatever the task count. It knows nothing of Jupyter: output goes through
``publish(data, display_id, update)``.
"""

from __future__ import annotations

import html
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

POLL_SECONDS = 0.5  # the first look at a cell's jobs, and the pace after; cells done sooner show nothing
MIN_UPDATE_SECONDS = 0.5  # at most two display updates a second, even for a 10,000-task job
FINAL_FLUSH_SECONDS = 2.0  # how long a cell's end waits for its summary to be sent

Publisher = Callable[[dict[str, str], str, bool], None]

logger = logging.getLogger(__name__)


@dataclass
class StageProgress:
    stage_id: int
    name: str
    total: int
    done: int
    active: int
    failed: int

    @property
    def complete(self) -> bool:
        """Every task succeeded and none runs: what the tracker says of it will not change."""
        return self.done >= self.total and not self.active


FINISHED = ("SUCCEEDED", "FAILED")


@dataclass
class CellProgress:
    """What one cell's jobs have done so far."""

    started: float
    jobs: dict[int, str] = field(default_factory=dict)  # job id -> status
    stages: dict[int, StageProgress] = field(default_factory=dict)

    def counted(self) -> list[StageProgress]:
        """Stages that ran or will run: a finished job's stages with no task done were skipped
        (their shuffle output was reused), and counting their tasks would make a done cell look unfinished."""
        finished = all(status in FINISHED for status in self.jobs.values())
        return [s for s in self.stages.values() if not finished or s.done or s.failed or s.active]

    def summary(self, now: float) -> str:
        stages = self.counted()
        done, total, failed = (sum(getattr(s, name) for s in stages) for name in ("done", "total", "failed"))
        failures = f", {failed} failed tasks" if failed else ""
        plural = lambda count, word: f"{count} {word}{'' if count == 1 else 's'}"  # noqa: E731
        return f"Spark: {plural(len(self.jobs), 'job')}, {plural(len(stages), 'stage')}, {done}/{total} tasks{failures} in {now - self.started:.1f} s"

    def render(self, now: float, final: bool) -> dict[str, str]:
        """text/plain and text/html for the current state; the final one is the summary alone."""
        summary = self.summary(now)
        running = [stage for stage in self.stages.values() if stage.done + stage.failed < stage.total or stage.active]
        if final or not running:
            text = summary
            rows = ""
        else:
            text = "\n".join(f"Stage {s.stage_id}: {s.done}/{s.total} tasks ({s.active} running)" for s in running) + "\n" + summary
            rows = "".join(
                f'<div><progress value="{s.done}" max="{max(s.total, 1)}" style="width:16em"></progress> '
                f"Stage {s.stage_id}{stage_label(s.name)}: {s.done}/{s.total} tasks"
                f"{f', {s.active} running' if s.active else ''}{f', {s.failed} failed' if s.failed else ''}</div>"
                for s in running
            )
        markup = f'<div class="pyspark-kernel-progress" style="font-family:monospace;font-size:0.85em">{rows}<div>{html.escape(summary)}</div></div>'
        return {"text/plain": text, "text/html": markup}


def stage_label(name: str) -> str:
    """A stage's call site as HTML, or nothing for Scala's generated names ("$anonfun$… at …").

    Dollar signs are escaped: JupyterLab would typeset "$…$" in HTML output as LaTeX.
    """
    if not name or name.startswith("$"):
        return ""
    return f" <small>{html.escape(name[:60]).replace('$', '&#36;')}</small>"


@dataclass(eq=False)
class RunningCell:
    """One cell's run, compared by identity: the job group spans cells, so under Run All the next cell
    can begin (same group) before the watcher wakes, and only this tells the two runs apart."""

    job_group: str
    started: float  # monotonic
    epoch_ms: float  # wall clock, to tell this cell's jobs from earlier ones
    publish: Publisher  # where this cell's display goes, even once the next cell has begun


class ProgressMonitor:
    """Polls a SparkContext's status tracker for the job group of the running cell.

    A cell that ends within POLL_SECONDS costs no JVM call and no wake of the thread: ``begin`` wakes
    it only when it is idle, ``end`` only when a display must be finished, and the thread, once awake,
    sleeps until the running cell is POLL_SECONDS old. So Run All over quick cells wakes it at most
    once per POLL_SECONDS, where each wake-up took the GIL from the cell's own thread.
    """

    def __init__(self, context: Any, publish: Publisher) -> None:
        self.context = context
        self.publish = publish
        self.enabled = True
        self._lock = threading.Condition()
        self._cell: RunningCell | None = None
        self._flushed = threading.Event()
        self._shown = False  # whether the running cell has a progress display to finish
        self._stopped = False
        self._armed = False  # whether the thread is timing a cell (then a cell's begin need not wake it)
        self._tracker: Any = None  # the JVM's JavaSparkStatusTracker, asked for once: asking is a JVM call
        self._ints: Callable[[Any], list[int]] | None = None  # a JVM int[] as a list, in one call
        self._earlier_group: str | None = None
        self._earlier_jobs: set[int] = set()  # jobs of the group that earlier cells ran
        self._failures = 0  # polls that failed, this session
        self._untold: BaseException | None = None  # the first failure, until the controller tells a cell of it
        self._abandoned: RunningCell | None = None  # the cell whose poll failed: not polled again
        self._thread = threading.Thread(target=self._loop, name="pyspark-kernel-progress", daemon=True)
        self._thread.start()

    def begin(self, job_group: str) -> None:
        """A cell starts running in ``job_group``. Costs the cell no JVM call and, unless the thread is
        idle, no wake-up: the thread looks at the cell only if it still runs at the first poll."""
        if not self.enabled:
            return
        with self._lock:
            self._cell = RunningCell(job_group, time.monotonic(), time.time() * 1000, self.publish)
            self._shown = False
            self._flushed.clear()
            if not self._armed:
                self._lock.notify()

    def end(self) -> None:
        """The cell finished. Only a cell with a display wakes the thread, and waits for it to send the
        summary, so that the summary lands before the cell's reply; others pay nothing."""
        with self._lock:
            if self._cell is None:
                return
            self._cell = None
            shown = self._shown
            if shown:
                self._lock.notify()
        if shown:
            self._flushed.wait(FINAL_FLUSH_SECONDS)

    def close(self) -> None:
        with self._lock:
            self._stopped = True
            self._cell = None
            self._lock.notify()

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._armed = False
                while self._cell is None and not self._stopped:
                    self._lock.wait()
                self._armed = True
            cell = self._first_poll_due()
            if cell is None:
                if self._stopped:
                    return
                continue
            try:
                self._watch(cell)
            except Exception as error:  # this cell's display ends here; the thread and the next cell's go on
                self._abandoned = cell
                self._failed(error)
            finally:
                self._flushed.set()

    def _failed(self, error: Exception) -> None:
        """A poll failed: log it (the first with its traceback), keep it for the cell to be told once,
        and drop what the poll reads, so that the next cell asks the JVM for it anew."""
        self._tracker = self._ints = None
        self._failures += 1
        if self._failures == 1:
            logger.warning("progress display stopped: %s", error, exc_info=True)
            with self._lock:
                self._untold = error
        else:
            logger.debug("progress display stopped again: %s", error)

    def take_failure(self) -> BaseException | None:
        """The first failed poll of this session, once (then None): the cell it stopped is told of it."""
        with self._lock:
            error, self._untold = self._untold, None
        return error

    def _first_poll_due(self) -> RunningCell | None:
        """Sleep until the running cell is POLL_SECONDS old and return it; None once no cell runs.
        Cells that begin and end meanwhile do not wake this thread, nor are they ever looked at."""
        with self._lock:
            while not self._stopped and self._cell is not None:
                cell = self._cell
                remaining = cell.started + POLL_SECONDS - time.monotonic()
                if remaining <= 0 and cell is not self._abandoned:
                    return cell
                self._lock.wait(remaining if remaining > 0 else POLL_SECONDS)  # an abandoned cell: until the next begins
            return None

    def _running(self, cell: RunningCell) -> bool:
        with self._lock:
            return self._cell is cell and not self._stopped

    def _watch(self, cell: RunningCell) -> None:
        """Poll the cell's jobs every POLL_SECONDS from its first poll (now) until it ends."""
        if self._tracker is None or self._ints is None:  # both, or neither: a poll needs the two
            tracker, ints = self.context._jsc.statusTracker(), int_array_reader(self.context)
            self._tracker, self._ints = tracker, ints
        job_group, cell_epoch_ms = cell.job_group, cell.epoch_ms
        if job_group != self._earlier_group:
            self._earlier_group, self._earlier_jobs = job_group, set()
        progress = CellProgress(started=cell.started)
        display_id = f"pyspark-progress-{uuid.uuid4().hex}"
        shown = False
        last_sent = 0.0
        last_text = ""
        while True:
            running = self._running(cell)
            if not running and not shown:
                return  # a cell that ended before its first poll, or before it ran a job, shows nothing
            self._poll(job_group, cell_epoch_ms, progress)
            now = time.monotonic()
            # A display starts only while the cell runs; once started, it always ends in the summary.
            due = (running and now - last_sent >= MIN_UPDATE_SECONDS) or (not running and shown)
            if progress.jobs and due:
                data = progress.render(now, final=not running)
                if data["text/plain"] != last_text or not running:
                    with self._lock:
                        self._shown = self._shown or running
                    cell.publish(data, display_id, shown)
                    shown, last_sent, last_text = True, now, data["text/plain"]
            if not running:
                return
            with self._lock:
                if self._running(cell):
                    self._lock.wait(POLL_SECONDS)

    def _poll(self, job_group: str, cell_epoch_ms: float, progress: CellProgress) -> None:
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
            submitted = stage.submissionTime()
            if submitted > 0:
                return submitted < cell_epoch_ms - 50
    return False


class ConnectProgressMonitor:
    """The same display for Spark Connect, fed by the server's progress callbacks instead of polling.

    Spark Connect sessions have no status tracker; ``spark.registerProgressHandler`` calls us on the
    cell's own thread with each update of the running operation, so no thread is needed here.
    """

    def __init__(self, spark: Any, publish: Publisher) -> None:
        self.spark = spark
        self.publish = publish
        self._progress: CellProgress | None = None
        self._display_id = ""
        self._shown = False
        self._last_sent = 0.0
        spark.registerProgressHandler(self)

    def begin(self, tag: str) -> None:
        self._progress = CellProgress(started=time.monotonic())
        self._display_id = f"pyspark-progress-{uuid.uuid4().hex}"
        self._shown = False
        self._last_sent = 0.0

    def __call__(self, stages: Any, inflight_tasks: int, operation_id: str | None, done: bool) -> None:
        progress = self._progress
        if progress is None:
            return
        progress.jobs[hash(operation_id)] = "SUCCEEDED" if done else "RUNNING"
        for stage in stages or ():
            running = 0 if stage.done else min(inflight_tasks, stage.num_tasks - stage.num_completed_tasks)
            progress.stages[stage.stage_id] = StageProgress(stage.stage_id, "", stage.num_tasks, stage.num_completed_tasks, running, 0)
        now = time.monotonic()
        if now - progress.started >= POLL_SECONDS and now - self._last_sent >= MIN_UPDATE_SECONDS:
            self.publish(progress.render(now, final=False), self._display_id, self._shown)
            self._shown, self._last_sent = True, now

    def end(self) -> None:
        progress, self._progress = self._progress, None
        if progress is not None and self._shown:
            self.publish(progress.render(time.monotonic(), final=True), self._display_id, True)

    def take_failure(self) -> BaseException | None:
        """Nothing polls here: the server's callbacks run in the cell's own calls, which report their errors."""
        return None

    def close(self) -> None:
        try:
            self.spark.removeProgressHandler(self)
        except Exception:
            pass
