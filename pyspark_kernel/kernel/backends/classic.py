"""The classic backend: a SparkSession on a JVM this process runs, reached through py4j.

One of the two kinds of session (connect.py is the other), behind one small interface (base.py):
create the session, put the running cell's jobs in a job group and cancel it (jobgroups.py), describe
the session, follow its progress, stop it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark_kernel.errors import SparkStartError
from pyspark_kernel.kernel import jvm, pyspark_hooks, uiprotect
from pyspark_kernel.kernel.backends.jobgroups import CellJobGroup
from pyspark_kernel.kernel.progress import ProgressMonitor
from pyspark_kernel.kernel.progress_display import Publisher
from pyspark_kernel.kernel.settings import SessionSettings

logger = logging.getLogger(__name__)

DEFAULT_LOG_LEVEL = "WARN"


class ClassicBackend:
    """Job groups per cell, cancelled with their future jobs; progress from the status tracker."""

    names: tuple[str, ...] = ("spark", "sc")
    remote: str | None = None
    warmable = True  # a fresh JVM's first query is the slowest thing a notebook waits for
    defer_start = False  # the JVM's launch mostly waits on another process: begin it at once

    def __init__(self, settings: SessionSettings, jvm_alive: Callable[[], bool]) -> None:
        self.settings = settings
        self.job_group = CellJobGroup(jvm_alive)  # the cells' job group, cancelled on an interrupt (jobgroups.py)

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
        return self.job_group.tag(session)

    def forget(self) -> None:
        self.job_group.forget()

    def cancel_cell(self, in_jvm_call: bool) -> threading.Thread | None:
        return self.job_group.cancel(in_jvm_call)

    def lost(self) -> str | None:
        return None  # a JVM that dies under its session is the session's JVM_GONE state (session.py)

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

    def ui_root(self, session: Any) -> str | None:
        return self.settings.ui_root(session.sparkContext.uiWebUrl)

    def namespace(self, session: Any) -> dict[str, Any]:
        return {"spark": session, "sc": session.sparkContext}

    def adopt_notebook(self, session: Any, name: str | None, cwd: str) -> None:
        """spark.app.name is fixed once the SparkContext runs, so the notebook's name goes where Spark can
        still take it: the UI's title, the cells' job descriptions, a local property. Hadoop's local
        filesystem resolves relative paths against the JVM's working folder unless told otherwise."""
        if name:
            self.job_group.describe_as(name)  # the next cell's group carries the new description
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
