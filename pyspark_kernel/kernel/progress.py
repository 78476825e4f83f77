"""Live Spark job progress for the running cell, from ``sc.statusTracker()``, with no frontend extension.

One long-lived thread polls the tracker while a cell runs and renders a display (HTML with a
text/plain fallback) that it updates in place; the cell ends with a one-line summary. It shows only
the jobs of the cell's job group submitted since the cell began, so jobs from other threads or earlier
cells never appear, and nothing is shown for cells that run no job or end before the first poll. Updates are throttled
to a bounded rate whatever the task count. It knows nothing of Jupyter: output goes through
``publish(data, display_id, update)``.

Here: when to look, for a classic session (one thread's timing); a Spark Connect session's monitor,
fed by the server's callbacks, is progress_connect.py's. What a display says is progress_display.py's
(jobview.py's for the job view); what a poll asks the JVM, progress_reader.py's (the bars) and
progress_store.py's (the job view).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pyspark_kernel.kernel.progress_display import FINISHED, MIN_UPDATE_SECONDS, POLL_SECONDS, CellProgress, Publisher
from pyspark_kernel.kernel.progress_reader import StatusTrackerReader
from pyspark_kernel.kernel.progress_store import StatusStoreReader

FINAL_FLUSH_SECONDS = 2.0  # how long a cell's end waits for its summary to be sent
SETTLE_SECONDS = 1.0  # how long the summary waits for Spark's listener to record its jobs' end

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class RunningCell:
    """One cell's run, compared by identity: the job group spans cells, so under Run All the next cell
    can begin (same group) before the watcher wakes, and only this tells the two runs apart."""

    job_group: str
    started: float  # monotonic
    epoch_ms: float  # wall clock, to tell this cell's jobs from earlier ones
    publish: Publisher  # where this cell's display goes, even once the next cell has begun


class PollFailures:
    """The polls that failed this session: the first is logged with its traceback and kept until a cell
    is told of it (once); later ones are only logged, briefly."""

    def __init__(self) -> None:
        self._count = 0
        self._untold: BaseException | None = None
        self._lock = threading.Lock()

    def add(self, error: Exception) -> None:
        self._count += 1
        if self._count == 1:
            logger.warning("progress display stopped: %s", error, exc_info=True)
            with self._lock:
                self._untold = error
        else:
            logger.debug("progress display stopped again: %s", error)

    def take(self) -> BaseException | None:
        with self._lock:
            error, self._untold = self._untold, None
        return error


class Readers:
    """What a poll reads a SparkContext with: the status tracker's counts for the bars, the status
    store's facts for the job view (``%spark progress`` switches between cells)."""

    def __init__(self, context: Any) -> None:
        self.bars = StatusTrackerReader(context)
        self.view = StatusStoreReader(context)

    def of(self, full: bool) -> StatusTrackerReader | StatusStoreReader:
        return self.view if full else self.bars

    def forget(self) -> None:
        self.bars.forget()
        self.view.forget()


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
        self.full = False  # the job view (jobview.py) rather than the bars: set per cell by cellprogress.py
        self.ui: str | None = None  # the Spark UI's root for the view's links (set with ``full``)
        self._lock = threading.Condition()
        self._cell: RunningCell | None = None
        self._flushed = threading.Event()
        self._shown = False  # whether the running cell has a progress display to finish
        self._stopped = False
        self._armed = False  # whether the thread is timing a cell (then a cell's begin need not wake it)
        self._readers = Readers(context)
        self._failures = PollFailures()
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
                self._readers.forget()  # the next cell asks the JVM anew, instead of failing on the same objects
                self._failures.add(error)
            finally:
                self._flushed.set()

    def take_failure(self) -> BaseException | None:
        """The first failed poll of this session, once (then None): the cell it stopped is told of it."""
        return self._failures.take()

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
        full = self.full
        reader = self._readers.of(full)
        reader.begin(cell.job_group)
        progress = CellProgress(started=cell.started, full=full, ui=self.ui if full else None, cores=self.context.defaultParallelism if full else 0)
        display_id = f"pyspark-progress-{uuid.uuid4().hex}"
        shown, last_sent, last_text = False, 0.0, ""
        while True:
            running = self._running(cell)
            if not running and not shown:
                return  # a cell that ended before its first poll, or before it ran a job, shows nothing
            reader.poll(cell.job_group, cell.epoch_ms, progress)
            now = time.monotonic()
            if not running:
                settle(reader, cell, progress)
            progress.sample(now)
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


def settle(reader: StatusTrackerReader | StatusStoreReader, cell: RunningCell, progress: CellProgress) -> None:
    """The cell's jobs have returned, but the status store hears of their end from Spark's listener bus a
    moment later: poll again (bounded) until it has, so the summary counts every task and the view marks
    the stages a job skipped."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while any(status not in FINISHED for status in progress.jobs.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
        reader.poll(cell.job_group, cell.epoch_ms, progress)
