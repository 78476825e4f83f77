"""Between the kernel and the notebook: the session, its names ``spark``/``sc`` (namespace.py), progress, %spark's verbs.

The kernel class (ipkernel.py) keeps only Jupyter's hooks and calls this around each cell; the magics
(magics.py) and the ``spark``/``sc`` stand-ins get this controller, never the kernel, as sparkmagic's
magics get theirs. So nothing here imports the kernel, and the kernel imports both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pyspark_kernel.kernel import pyspark_hooks
from pyspark_kernel.kernel.backends.base import Monitor
from pyspark_kernel.kernel.cellprogress import RunningCell, SessionProgress
from pyspark_kernel.kernel.namespace import OWN_OUTPUT, SparkNamespace
from pyspark_kernel.kernel.progress_display import Publisher
from pyspark_kernel.kernel.session import ManagedSession, SessionState
from pyspark_kernel.kernel.warmup import IdleWarmer
from pyspark_kernel.variables import ProgressMode

logger = logging.getLogger(__name__)


def notice(text: str) -> dict[str, str]:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;")
    return {"text/plain": f"Warning: {text}", "text/html": f'<div style="color:#8a5a00"><b>Warning:</b> {escaped}</div>'}


class SparkController:
    """The kernel's Spark side: one ManagedSession, the user namespace's names for it (namespace.py), and its
    displays: ``display(data, metadata)`` shows output in the running cell, progress goes through ``publisher()``
    (cellprogress.py)."""

    def __init__(
        self,
        session: ManagedSession,
        user_ns: dict[str, Any],
        display: Callable[[dict[str, str], dict[str, str]], None],
        publisher: Callable[[], Publisher],
        progress: ProgressMode = "full",
    ) -> None:
        self.session = session
        self.names = SparkNamespace(session, user_ns, display)
        self.display = display
        self.progress = SessionProgress(session.backend, publisher, progress)
        self._told: set[str] = set()  # the losses a cell was told of: each once a kernel, not every cell
        self.warmer = IdleWarmer(session)
        session.notice = self.notice
        session.on_ready = self.session_ready
        self.cell = RunningCell(session, self.progress, self.tell_once)
        session.waiting = self.cell.wait_line
        session.waited = self.cell.begin_late

    def start(self) -> None:
        """Put the stand-ins in the namespace and start Spark as the kernelspec says (eager, lazy, none)."""
        if self.session.settings.start != "none":
            self.names.push_stand_ins()
        if self.session.settings.start == "eager":
            self.session.start()  # installs the hooks first, then starts Spark
        else:
            pyspark_hooks.install_in_background(self.session)  # only the hooks: user code may build the session

    def session_ready(self) -> None:
        """On the start thread, once a start made a session: gather its summary line's facts, then warm."""
        self.names.gather_facts()
        self.warmer.warm_if_idle()

    def notice(self, text: str) -> None:
        """A warning from the kernel about the running cell's Spark calls, shown in that cell."""
        self.display(notice(text), {OWN_OUTPUT: "notice"})

    def tell_once(self, kind: str, text: str) -> None:
        """A notice of something the user loses (it is in the kernel's log too), in the first cell it happens to."""
        if kind not in self._told:
            self._told.add(kind)
            self.notice(text)

    # -- around each cell ----------------------------------------------------------------------
    def before_cell(self) -> Monitor | None:
        """Bind the real objects, tag the cell's work and begin its progress display. Needs the
        session up; raises what Spark raises (the caller decides), KeyboardInterrupt included.
        Costs a cell no JVM call once the session's first cell has set its tag (bench row 3)."""
        self.warmer.cell_started()
        self.cell.begins()
        pyspark_hooks.wait_installed()
        lost = self.session.backend.lost()  # None at once but for a shared local server's kernel (bench row 3)
        if lost is not None and self.session.ready:  # its server died between cells: a new one, and the notebook is told what went with it
            self.notice(lost)
            self.restart()
        spark = self.session.session
        if spark is None or not (self.session.ready and self.session.jvm_alive()):
            return None
        self.names.bind(spark)
        return self.cell.follow(spark)

    def cancel_cell(self, in_jvm_call: bool) -> None:
        """Cancel the running cell's Spark work; safe in a signal handler (never blocks)."""
        self.session.backend.cancel_cell(in_jvm_call)

    def after_cell(self) -> None:
        """End the cell's progress display (saying, once, if its poll failed), give a session the cell made
        its line (namespace.py), then, idle, warm the session."""
        self.cell.ends()
        failure = self.progress.end()
        if failure is not None and self.session.jvm_alive():  # a JVM that is gone: the cell says so itself
            self.tell_once("progress", f"progress display stopped: {failure}")
        self.names.announce_new()
        self.warmer.cell_ended()

    # -- what the warm pool asks (pool.py) -----------------------------------------------------------
    def pool_state(self) -> str:
        """starting, warming, warm (ready to hand over) or failed: what a pool waits on."""
        state = self.session.state
        if state is SessionState.READY:
            return "warm" if self.warmer.warmed() else "warming"
        if state is SessionState.STARTING:
            return "starting"
        if state is SessionState.NOT_STARTED and self.session.settings.start != "eager":
            return "warm"  # a lazy or none kernel has nothing to start before a notebook asks
        return "failed" if state is not SessionState.NOT_STARTED else "starting"

    def adopt_notebook(self, name: str | None, cwd: str) -> None:
        """The pool handed this kernel to a notebook: its name and folder, where Spark can still take them."""
        self.session.backend.adopt_notebook(self.session.session, name, cwd)

    # -- what %spark and shutdown ask for ---------------------------------------------------------
    def restart(self, conf: dict[str, str] | None = None) -> Any:
        """A new session (merged ``conf`` over earlier %spark conf); Python variables stay."""
        self.names.push_stand_ins()
        self.names.forget_announced()
        self.warmer.cancel()
        self.session.stop()
        self.session.conf_overrides.update(conf or {})  # merged over earlier %spark conf, never replacing it
        self.session.start()
        spark = self.session.get()
        self.names.bind(spark)
        return spark

    def stop(self) -> None:
        self.warmer.cancel()
        self.session.stop()
        if self.session.settings.start != "none":
            self.names.push_stand_ins()

    def shutdown(self) -> None:
        """Stop Spark and its JVM; the JVM's log is kept only as the evidence of a start or JVM that failed."""
        self.progress.close()
        self.warmer.cancel()
        keep_log = self.session.state in (SessionState.FAILED, SessionState.JVM_GONE)
        self.session.stop()
        log_path = self.session.settings.log_path
        if log_path is not None and log_path.exists() and not keep_log:
            log_path.unlink()
        if self.session.settings.ui_port is not None:
            self.session.settings.ui_port.release()
