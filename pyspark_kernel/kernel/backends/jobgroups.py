"""A classic session's job groups: the running cell's jobs carry one, and an interrupt cancels it.

One group serves every cell until an interrupt cancels it with its future jobs; the next cell then gets
a new one. So a cell costs no JVM call, and a cancel hits only the interrupted cell. The same cancel
loop (cancel_as_jobs_appear) stops a cancelled warm-up's jobs (warmup.py), at its own pace.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

# An interrupted cell's group is cancelled again as jobs appear: for INTERRUPT_CANCEL_MIN_SECONDS, every
# INTERRUPT_CANCEL_POLL_SECONDS. A cancelled warm-up uses the same loop at its own pace (warmup.py).
INTERRUPT_CANCEL_MIN_SECONDS = 10.0
INTERRUPT_CANCEL_POLL_SECONDS = 0.1
CANCEL_WATCH_SECONDS = 600.0  # the longest a cancelled group is followed while what submits its jobs still runs


class CellJobGroup:
    """The job group of the cells the main thread runs, on the session's SparkContext."""

    def __init__(self, jvm_alive: Callable[[], bool]) -> None:
        self.description = "notebook cell"  # the cells' job group description in the Spark UI
        self._jvm_alive = jvm_alive
        self._group: str | None = None
        self._context: Any = None  # the SparkContext the group was set on
        self._jvm_thread: Any = None  # the JVM thread that runs the main thread's calls

    def tag(self, session: Any) -> str:
        """The calling thread's job group, set on first use and again when the session's context changes.

        One group serves every cell until an interrupt cancels it with its future jobs; the next cell
        then gets a new one. So a cell costs no JVM call, and a cancel hits only the interrupted cell.
        """
        context = session.sparkContext
        if self._group is None or self._context is not context:
            group = f"pyspark-kernel-{uuid.uuid4().hex[:12]}"
            try:
                context.setJobGroup(group, self.description, interruptOnCancel=True)
            except Exception:
                self._clear_stale_group(context)
                raise
            self._group, self._context = group, context
            self._jvm_thread = context._jvm.java.lang.Thread.currentThread()
        return self._group

    def _clear_stale_group(self, context: Any) -> None:
        """The thread's group of the interrupted cell was cancelled with its future jobs: a cell left in
        it would have every job rejected. Without a group its jobs run (and no interrupt cancels them)."""
        try:
            context._jsc.clearJobGroup()
        except Exception as error:
            logger.warning("clearing the interrupted cell's job group failed too: %s", error)

    def forget(self) -> None:
        """The session is gone: its group goes with it."""
        self._group = self._context = self._jvm_thread = None

    def cancel(self, in_jvm_call: bool) -> threading.Thread | None:
        """Cancel the running cell's jobs, and any it submits later, from a thread of their own.

        Called from a SIGINT handler, so it must not block: py4j may be mid-call on the main thread.
        Spark's "cancel with future jobs" rejects the group's later result jobs, but not the map-stage
        jobs that adaptive query execution submits first (DAGScheduler.handleMapStageSubmitted has no
        such check), and an interrupt during planning comes before any job exists. So the group is
        cancelled again as jobs appear: for a few seconds after any interrupt, and, when it landed
        inside a py4j call (``in_jvm_call``: py4j drops the connection, the JVM thread goes on with the
        call), for as long as that JVM thread still runs it. Jobs of other threads run on.
        """
        group, context, jvm_thread = self._group, self._context, self._jvm_thread
        if group is None or context is None:
            return None
        self._group = None  # the next cell gets a fresh group
        running = jvm_thread.isAlive if in_jvm_call and jvm_thread is not None else None
        thread = threading.Thread(
            target=cancel_as_jobs_appear,
            args=(context, group, running, INTERRUPT_CANCEL_MIN_SECONDS, INTERRUPT_CANCEL_POLL_SECONDS, self._jvm_alive),
            name="pyspark-kernel-cancel",
            daemon=True,
        )
        thread.start()
        return thread

    def describe_as(self, name: str) -> None:
        """The cells' jobs say ``name`` (the notebook's) from the next cell on, in a group of its own."""
        self.description = name
        self._group = None


def cancel_as_jobs_appear(
    context: Any, group: str, running: Callable[[], bool] | None, min_seconds: float, poll_seconds: float, jvm_alive: Callable[[], bool]
) -> None:
    """Cancel ``group`` with its future jobs, then again every ``poll_seconds``: for ``min_seconds``,
    and on while ``running()`` says that what submits the group's jobs still runs (the JVM thread of
    an interrupted call, a warm-up's thread), up to CANCEL_WATCH_SECONDS in all. Used for an
    interrupted cell's group and for a warm-up's (warmup.py), whose adaptive-execution map-stage jobs
    escape the "future jobs" part alike.

    A failed call is tried again at the next poll, never the end of the watch: one missed cancel must
    not leave the group's later jobs running.
    """
    started = time.monotonic()
    first = True
    while True:
        try:
            scala_context = context._jsc.sc()
            if first:
                try:
                    scala_context.cancelJobGroupAndFutureJobs(group)  # Spark 4: also jobs not yet submitted
                except Exception:
                    scala_context.cancelJobGroup(group)  # Spark 3.x
                first = False
            else:
                scala_context.cancelJobGroup(group)
            still_running = running is not None and running()
        except Exception as error:
            if not jvm_alive():
                return  # a JVM that is gone has no jobs left to cancel
            logger.debug("cancelling job group %s: %s", group, error)
            still_running = running is not None
        elapsed = time.monotonic() - started
        if elapsed >= CANCEL_WATCH_SECONDS or (elapsed >= min_seconds and not still_running):
            return
        time.sleep(poll_seconds)
