"""The classic backend: a SparkSession on a JVM this process runs, reached through py4j.

One of the two kinds of session (connect.py is the other), behind one small interface (base.py):
create the session, put the running cell's jobs in a job group, cancel it, describe the session, follow
its progress, stop it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark_kernel.errors import SparkStartError
from pyspark_kernel.kernel import jvm, pyspark_hooks, uiprotect
from pyspark_kernel.kernel.progress import ProgressMonitor
from pyspark_kernel.kernel.progress_display import Publisher
from pyspark_kernel.kernel.settings import SessionSettings

logger = logging.getLogger(__name__)

DEFAULT_LOG_LEVEL = "WARN"
# An interrupted cell's group is cancelled again as jobs appear: for INTERRUPT_CANCEL_MIN_SECONDS, every
# INTERRUPT_CANCEL_POLL_SECONDS. A cancelled warm-up uses the same loop at its own pace (warmup.py).
INTERRUPT_CANCEL_MIN_SECONDS = 10.0
INTERRUPT_CANCEL_POLL_SECONDS = 0.1
CANCEL_WATCH_SECONDS = 600.0  # the longest a cancelled group is followed while what submits its jobs still runs


class ClassicBackend:
    """Job groups per cell, cancelled with their future jobs; progress from the status tracker."""

    names: tuple[str, ...] = ("spark", "sc")
    remote: str | None = None
    warmable = True  # a fresh JVM's first query is the slowest thing a notebook waits for
    defer_start = False  # the JVM's launch mostly waits on another process: begin it at once

    def __init__(self, settings: SessionSettings, jvm_alive: Callable[[], bool]) -> None:
        self.settings = settings
        self.job_description = "notebook cell"  # the cells' job group description in the Spark UI
        self._jvm_alive = jvm_alive
        self._group: str | None = None
        self._context: Any = None  # the SparkContext the group was set on
        self._jvm_thread: Any = None  # the JVM thread that runs the main thread's calls

    def live_session(self) -> Any:
        return pyspark_hooks.live_session(None)

    def create(self, overrides: dict[str, str], launched: Callable[[], bool]) -> Any:
        """The same builder call a notebook makes: if user code made a session first, this joins it.
        ``launched()`` says whether this start launched the JVM, whose log level is then ours to set."""
        from pyspark.sql import SparkSession

        try:
            spark = SparkSession.builder.getOrCreate()
        except SparkStartError:
            raise
        except Exception as error:
            tail = jvm.read_tail(self.settings.log_path)
            cause, fix = jvm.diagnose(jvm.read_tail(self.settings.log_path, jvm.DIAGNOSE_LINES))  # the JVM may have exited
            reason = error if fix == jvm.UNKNOWN_CAUSE[1] else f"{cause} ({error})"
            raise SparkStartError(f"Spark could not create its SparkContext: {reason}\n{tail}".rstrip(), fix) from error
        if launched():
            level = self.settings.user_conf().get("spark.log.level") or overrides.get("spark.log.level")
            spark.sparkContext.setLogLevel(level or DEFAULT_LOG_LEVEL)
        return spark

    def cell_tag(self, session: Any) -> str:
        """The calling thread's job group, set on first use and again when the session's context changes.

        One group serves every cell until an interrupt cancels it with its future jobs; the next cell
        then gets a new one. So a cell costs no JVM call, and a cancel hits only the interrupted cell.
        """
        context = session.sparkContext
        if self._group is None or self._context is not context:
            group = f"pyspark-kernel-{uuid.uuid4().hex[:12]}"
            try:
                context.setJobGroup(group, self.job_description, interruptOnCancel=True)
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
        self._group = self._context = self._jvm_thread = None

    def cancel_cell(self, in_jvm_call: bool) -> threading.Thread | None:
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

    def describe(self, session: Any) -> dict[str, str | None]:
        """The facts the first-cell line and %spark show: version, master, app id, UI URL."""
        context = session.sparkContext
        ui_note = uiprotect.ui_note(uiprotect.session_facts(context), routed=bool(self.settings.ui_proxy)) if context.uiWebUrl else None
        return {
            "version": session.version,
            "master": context.master,
            "app_id": context.applicationId,
            "ui": self.settings.ui_link(context.uiWebUrl),
            "ui_note": ui_note,
        }

    def status_lines(self, session: Any) -> list[str]:
        context = session.sparkContext
        executors = context._jsc.sc().statusTracker().getExecutorInfos()
        return [
            f"master: {context.master}",
            f"app id: {context.applicationId}   app name: {context.appName}",
            f"Spark UI: {self.settings.ui_link(context.uiWebUrl)}",
            "from other local users: " + "; ".join(f"{part} {state}" for part, state in uiprotect.session_facts(context).items()),
            f"executors: {max(len(executors) - 1, 0)} (plus the driver)   default parallelism: {context.defaultParallelism}",
        ]

    def set_log_level(self, session: Any, level: str) -> None:
        session.sparkContext.setLogLevel(level)

    def progress_source(self, session: Any) -> Any:
        return session.sparkContext

    def progress_monitor(self, source: Any, publish: Publisher) -> ProgressMonitor:
        return ProgressMonitor(source, publish)

    def namespace(self, session: Any) -> dict[str, Any]:
        return {"spark": session, "sc": session.sparkContext}

    def adopt_notebook(self, session: Any, name: str | None, cwd: str) -> None:
        """spark.app.name is fixed once the SparkContext runs, so the notebook's name goes where Spark can
        still take it: the UI's title, the cells' job descriptions, a local property. Hadoop's local
        filesystem resolves relative paths against the JVM's working folder unless told otherwise."""
        if name:
            self.job_description = name
            self._group = None  # the next cell's group carries the new description
        if session is None:
            return
        context, jvm = session.sparkContext, session._jvm
        ui = context._jsc.sc().ui()
        if name and ui.isDefined():
            getattr(ui.get(), "appName_$eq")(name)
        if name:
            context.setLocalProperty("pyspark.kernel.notebook", name)
        local_fs = jvm.org.apache.hadoop.fs.FileSystem.getLocal(context._jsc.hadoopConfiguration())
        local_fs.setWorkingDirectory(jvm.org.apache.hadoop.fs.Path(str(Path(cwd).resolve())))  # a plain path: a URI would keep %20


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
