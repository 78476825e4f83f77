"""Between the kernel and the notebook: the session, the names ``spark``/``sc``, progress, %spark's verbs.

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
from pyspark_kernel.kernel.progress_display import Publisher
from pyspark_kernel.kernel.session import ManagedSession, SessionState
from pyspark_kernel.kernel.warmup import IdleWarmer

# Outputs the kernel adds to a cell (the session line, progress, notices) carry this metadata key, so
# that tools comparing notebooks, and people reading them, can tell them from the cell's own output.
OWN_OUTPUT = "pyspark_kernel"

logger = logging.getLogger(__name__)


def banner(facts: dict[str, str | None]) -> dict[str, str]:
    text = html = f"Spark {facts['version']} · master {facts['master']} · app {facts['app_id']}"
    if facts["ui"]:
        note = facts.get("ui_note") or ""
        text += f" · Spark UI {facts['ui']}" + (f" ({note})" if note.startswith("open") else "")
        title = f' title="{note}"' if note else ""
        html += f' · <a href="{facts["ui"]}" target="_blank"{title}>Spark UI</a>' + (f" ({note})" if note.startswith("open") else "")
    return {"text/plain": text, "text/html": f"<small>{html}</small>"}


def notice(text: str) -> dict[str, str]:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;")
    return {"text/plain": f"Warning: {text}", "text/html": f'<div style="color:#8a5a00"><b>Warning:</b> {escaped}</div>'}


class SparkStandIn:
    """Stands for ``spark`` or ``sc`` while the session starts; any use waits for it, then delegates."""

    def __init__(self, controller: SparkController, name: str) -> None:
        object.__setattr__(self, "_controller", controller)
        object.__setattr__(self, "_name", name)

    def _target(self) -> Any:
        return self._controller.spark_object(self._name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._target(), attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        setattr(self._target(), attribute, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __dir__(self) -> list[str]:
        """Tab completion must not wait for the JVM: offer the class's names until the session is up."""
        if self._controller.session.ready:
            return dir(self._target())
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        return dir(SparkSession if self._name == "spark" else SparkContext)

    def __repr__(self) -> str:
        session = self._controller.session
        if session.ready:
            return repr(self._target())
        return f"<{self._name}: Spark is {session.state.value}; using it waits for the session>"


class SparkController:
    """The kernel's Spark side: one ManagedSession, the user namespace's names for it, and its displays.

    ``display(data, metadata)`` shows output in the running cell; ``publisher()`` gives a Publisher that
    addresses the running cell from another thread (the progress monitor's).
    """

    def __init__(
        self,
        session: ManagedSession,
        user_ns: dict[str, Any],
        display: Callable[[dict[str, str], dict[str, str]], None],
        publisher: Callable[[], Publisher],
        progress: bool = True,
    ) -> None:
        self.session = session
        self.user_ns = user_ns
        self.display = display
        self.publisher = publisher
        self.progress_enabled = progress
        self._monitor: Monitor | None = None
        self._monitor_source: Any = None  # what the monitor follows (the SparkContext or Connect session)
        self._announced: Any = None  # the session the one-line summary was shown for
        self._facts: tuple[Any, dict[str, str | None]] | None = None  # (session, what its summary says)
        self._told: set[str] = set()  # the losses a cell was told of: each once a kernel, not every cell
        self.warmer = IdleWarmer(session)
        session.notice = self.notice
        session.on_ready = self.session_ready

    def start(self) -> None:
        """Put the stand-ins in the namespace and start Spark as the kernelspec says (eager, lazy, none)."""
        if self.session.settings.start != "none":
            self.push_stand_ins()
        if self.session.settings.start == "eager":
            self.session.start()  # installs the hooks first, then starts Spark
        else:
            pyspark_hooks.install_in_background(self.session)  # only the hooks: user code may build the session

    # -- the namespace -----------------------------------------------------------------------
    def push_stand_ins(self) -> None:
        self.user_ns.update({name: SparkStandIn(self, name) for name in self.session.backend.names})

    def spark_object(self, name: str) -> Any:
        """The real object behind ``name``, waiting for the session; swaps it into the namespace."""
        spark = self.session.get()
        self.bind(spark)
        return self.session.backend.namespace(spark)[name]

    def bind(self, spark: Any) -> None:
        """Replace the stand-ins with the real objects, and say which session this is (once)."""
        for name, real in self.session.backend.namespace(spark).items():
            if isinstance(self.user_ns.get(name), SparkStandIn):
                self.user_ns[name] = real
        self.announce(spark)

    def session_ready(self) -> None:
        """On the start thread, once a start made a session: gather what the first cell's summary line
        says (a handful of JVM calls, 50 ms of that cell's time otherwise: bench row 8), then warm."""
        spark = self.session.session
        if spark is not None:
            try:
                self._facts = (spark, self.session.backend.describe(spark))
            except Exception:  # announce() asks again, in the cell, and shows what goes wrong there
                pass
        self.warmer.warm_if_idle()

    def announce(self, spark: Any) -> None:
        """Once per session, one line in the running cell: version, master, app id, Spark UI."""
        if self._announced is not spark:
            self._announced = spark
            facts = self._facts[1] if self._facts is not None and self._facts[0] is spark else self.session.backend.describe(spark)
            self.display(banner(facts), {OWN_OUTPUT: "banner"})

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
        pyspark_hooks.wait_installed()
        spark = self.session.session
        if spark is None or not (self.session.ready and self.session.jvm_alive()):
            return None
        self.bind(spark)
        try:
            tag = self.session.backend.cell_tag(spark)
        except Exception as error:  # the cell runs with no job group: an interrupt has nothing to cancel
            logger.warning("setting the cell's job group failed: %s", error, exc_info=True)
            self.tell_once("untagged", f"this cell's Spark jobs cannot be cancelled by an interrupt: {error}")
            return None
        if not self.progress_enabled:
            return None
        monitor = self._current_monitor(spark)
        monitor.begin(tag)
        return monitor

    def cancel_cell(self, in_jvm_call: bool) -> None:
        """Cancel the running cell's Spark work; safe in a signal handler (never blocks)."""
        self.session.backend.cancel_cell(in_jvm_call)

    def after_cell(self) -> None:
        """End the cell's progress display (saying, once, if its poll failed). The cell made a session (a
        builder in lazy or none mode, or after spark.stop()): say so there. Costs a cell that made none one
        read of pyspark's class state. Then, idle, warm the session."""
        if self._monitor is not None:
            self._monitor.end()
            failure = self._monitor.take_failure()
            if failure is not None and self.session.jvm_alive():  # a JVM that is gone: the cell says so itself
                self.tell_once("progress", f"progress display stopped: {failure}")
        spark = self.session.session
        if spark is not None and spark is not self._announced and self.session.ready:
            try:
                self.announce(spark)
            except Exception as error:  # the session line is a courtesy; a cell's result must not depend on it
                logger.warning("the session line could not be shown: %s", error, exc_info=True)
        self.warmer.cell_ended()

    def _current_monitor(self, spark: Any) -> Monitor:
        """The progress monitor of the session ``spark``, made anew when the session is."""
        source = self.session.backend.progress_source(spark)
        if self._monitor is None or self._monitor_source is not source:
            if self._monitor is not None:
                self._monitor.close()
            self._monitor = self.session.backend.progress_monitor(source, self.publisher())
            self._monitor_source = source
        else:
            self._monitor.publish = self.publisher()
        return self._monitor

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
        self.push_stand_ins()
        self._announced = None
        self.warmer.cancel()
        self.session.stop()
        self.session.conf_overrides.update(conf or {})  # merged over earlier %spark conf, never replacing it
        self.session.start()
        spark = self.session.get()
        self.bind(spark)
        return spark

    def stop(self) -> None:
        self.warmer.cancel()
        self.session.stop()
        if self.session.settings.start != "none":
            self.push_stand_ins()

    def shutdown(self) -> None:
        """Stop Spark and its JVM; the JVM's log is kept only as the evidence of a start or JVM that failed."""
        if self._monitor is not None:
            self._monitor.close()
        self.warmer.cancel()
        keep_log = self.session.state in (SessionState.FAILED, SessionState.JVM_GONE)
        self.session.stop()
        log_path = self.session.settings.log_path
        if log_path is not None and log_path.exists() and not keep_log:
            log_path.unlink()
        if self.session.settings.ui_port is not None:
            self.session.settings.ui_port.release()
