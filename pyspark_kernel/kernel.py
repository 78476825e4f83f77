"""PySparkKernel: ipykernel's IPythonKernel with a SparkSession that starts while you type.

Last step of the data path: the kernel owns a ManagedSession (session.py), puts ``spark`` and ``sc``
in the user namespace at once, and stops the session and its JVM on shutdown and restart. Until the
session is up, ``spark`` and ``sc`` are stand-ins that wait for it when touched; from the first cell
after it is up they are the real objects, so ``isinstance`` and libraries that check types work.

Around each cell it runs Spark's side of the notebook: the cell's jobs run in a job group that an
interrupt cancels (and only that group), a progress display follows them, and an error that comes
from a dead JVM is replaced by what to do about it.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

from ipykernel.ipkernel import IPythonKernel

from . import __version__
from .session import ManagedSession, SessionSettings, SessionState, SparkStartError, describe, ui_link

# Outputs the kernel adds to a cell (the session line, progress, notices) carry this metadata key, so
# that tools comparing notebooks, and people reading them, can tell them from the cell's own output.
OWN_OUTPUT = "pyspark_kernel"


class SparkStandIn:
    """Stands for ``spark`` or ``sc`` while the session starts; any use waits for it, then delegates."""

    def __init__(self, kernel: PySparkKernel, name: str) -> None:
        object.__setattr__(self, "_kernel", kernel)
        object.__setattr__(self, "_name", name)

    def _target(self) -> Any:
        return self._kernel.spark_object(self._name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._target(), attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        setattr(self._target(), attribute, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __dir__(self) -> list[str]:
        """Tab completion must not wait for the JVM: offer the class's names until the session is up."""
        if self._kernel.spark_session.ready:
            return dir(self._target())
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        return dir(SparkSession if self._name == "spark" else SparkContext)

    def __repr__(self) -> str:
        session = self._kernel.spark_session
        if session.ready:
            return repr(self._target())
        return f"<{self._name}: Spark is {session.state.value}; using it waits for the session>"


class SparkJVMGone(RuntimeError):
    """Shown in place of the py4j error a call into a dead JVM raises."""


class QuietInterruptLog(logging.Filter):
    """py4j logs a traceback at ERROR for every interrupted call; the cell already says KeyboardInterrupt."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "KeyboardInterrupt while sending command" not in str(record.msg)


def in_py4j_call(frame: Any) -> bool:
    """True when the interrupted frame is inside py4j: a call into the JVM was in flight."""
    marker = f"{os.sep}py4j{os.sep}"
    while frame is not None:
        if marker in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def interrupted(error: BaseException | None) -> bool:
    """True when ``error`` was raised while handling a KeyboardInterrupt (its implicit context chain)."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, KeyboardInterrupt):
            return True
        error, seen = error.__context__, seen + 1
    return False


class PySparkKernel(IPythonKernel):
    """An IPython kernel whose namespace has a SparkSession ``spark`` and its SparkContext ``sc``."""

    implementation = "pyspark_kernel"
    implementation_version = __version__
    banner = "PySpark kernel: IPython with a SparkSession as `spark` and its SparkContext as `sc`"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spark_session = ManagedSession(SessionSettings.from_environ(log_path=self._log_path()))
        self.progress_enabled = os.environ.get("PYSPARK_KERNEL_PROGRESS", "on").lower() not in ("off", "0", "false", "no")
        self._progress: Any = None  # ProgressMonitor (classic) or ConnectProgressMonitor, made when the session is up
        self._progress_source: Any = None  # the SparkContext or Connect session it follows
        self._announced: Any = None  # the session the one-line summary was shown for
        self._interrupted = False  # whether the running cell got SIGINT
        self._shown_error: BaseException | None = None  # what _spark_error showed in its place
        self.spark_session.notice = self._notice
        from .magics import SparkMagics

        self.shell.register_magics(SparkMagics(self.shell, self))
        from py4j.protocol import Py4JError

        self.shell.set_custom_exc((Py4JError, ConnectionError), self._spark_error)
        logging.getLogger().addFilter(QuietInterruptLog())
        if self.spark_session.settings.start != "none":
            self._push_stand_ins()
        if self.spark_session.settings.start == "eager":
            self.spark_session.start()  # installs the hooks first, then starts Spark
        else:
            self.spark_session.prepare()  # only the hooks: user code may build the session itself

    def _log_path(self) -> Path | None:
        """The JVM's log beside the connection file: kernel-<id>.json -> kernel-<id>-spark.log."""
        connection_file = getattr(self.parent, "abs_connection_file", None) if self.parent else None
        if not connection_file:
            return None
        return Path(os.path.splitext(connection_file)[0] + "-spark.log")

    # -- the namespace -----------------------------------------------------------------------
    def spark_names(self) -> tuple[str, ...]:
        """Spark Connect sessions have no SparkContext, so they get ``spark`` only."""
        return ("spark",) if self.spark_session.settings.remote else ("spark", "sc")

    def _push_stand_ins(self) -> None:
        self.shell.push({name: SparkStandIn(self, name) for name in self.spark_names()}, interactive=False)

    def spark_object(self, name: str) -> Any:
        """The real object behind ``name``, waiting for the session; swaps it into the namespace."""
        spark = self.spark_session.get()
        self._bind_real_objects(spark)
        return spark if name == "spark" else spark.sparkContext

    def _bind_real_objects(self, spark: Any) -> None:
        user_ns = self.shell.user_ns
        for name in self.spark_names():
            if isinstance(user_ns.get(name), SparkStandIn):
                user_ns[name] = spark if name == "spark" else spark.sparkContext
        self._announce(spark)

    def _announce(self, spark: Any) -> None:
        """Once per session, one line in the running cell: version, master, app id, Spark UI."""
        if self._announced is spark:
            return
        self._announced = spark
        facts = describe(spark)
        text = f"Spark {facts['version']} · master {facts['master']} · app {facts['app_id']}"
        html = text
        link = ui_link(self.spark_session.settings, facts["ui"])
        if link:
            text += f" · Spark UI {link}"
            html += f' · <a href="{link}" target="_blank">Spark UI</a>'
        from IPython.display import display

        display({"text/plain": text, "text/html": f"<small>{html}</small>"}, metadata={OWN_OUTPUT: "banner"}, raw=True)

    def _notice(self, text: str) -> None:
        """A warning from the kernel about the running cell's Spark calls, shown in that cell."""
        from IPython.display import display

        escaped = text.replace("&", "&amp;").replace("<", "&lt;")
        display(
            {"text/plain": f"Warning: {text}", "text/html": f'<div style="color:#8a5a00"><b>Warning:</b> {escaped}</div>'},
            metadata={OWN_OUTPUT: "notice"},
            raw=True,
        )

    # -- around each cell ----------------------------------------------------------------------
    async def do_execute(self, code: str, silent: bool, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run the cell in the session's job group, with live progress when it runs Spark jobs."""
        monitor = None
        self._interrupted = False
        self.spark_session.wait_for_hooks()
        if self.spark_session.ready and self.spark_session.jvm_alive() and not silent:
            try:
                self._bind_real_objects(self.spark_session.get())
                group = self.spark_session.cell_group()
                monitor = self._monitor() if group and self.progress_enabled else None
                if monitor is not None:
                    monitor.begin(group)
            except KeyboardInterrupt:  # an interrupt before the cell's code ran: the cell is not run
                self.shell.showtraceback((KeyboardInterrupt, KeyboardInterrupt(), None))
                return {"status": "error", "ename": "KeyboardInterrupt", "evalue": "", "traceback": [], "execution_count": self.shell.execution_count}
            except Exception:  # Spark's trouble is the cell's to report, with its own message
                monitor = None
        self._shown_error = None
        try:
            reply = await super().do_execute(code, silent, *args, **kwargs)
        finally:
            if monitor is not None:
                monitor.end()
        if not silent:
            self._announce_new_session()
        if self._shown_error is not None and reply.get("status") == "error":
            # The reply names the error the cell showed, not the py4j error underneath it.
            reply.update(ename=type(self._shown_error).__name__, evalue=str(self._shown_error))
        return reply

    def _announce_new_session(self) -> None:
        """The cell made a session (a builder in lazy or none mode, or after spark.stop()): say so there.
        Costs a cell that made none one read of pyspark's class state."""
        session = self.spark_session.session
        if session is None or session is self._announced or not self.spark_session.ready:
            return
        try:
            self._announce(session)
        except Exception:  # the session line is a courtesy; a cell's result must not depend on it
            pass

    def _monitor(self) -> Any:
        """The progress monitor of the current session, made anew when the session is."""
        from .progress import ConnectProgressMonitor, ProgressMonitor

        spark = self.spark_session.get()
        source = spark if self.spark_session.settings.remote else spark.sparkContext
        if self._progress is None or self._progress_source is not source:
            if self._progress is not None:
                self._progress.close()
            monitor_class = ConnectProgressMonitor if self.spark_session.settings.remote else ProgressMonitor
            self._progress = monitor_class(source, self._publisher(self.get_parent("shell")))
            self._progress_source = source
        else:
            self._progress.publish = self._publisher(self.get_parent("shell"))
        return self._progress

    def _publisher(self, parent: dict[str, Any]) -> Any:
        """Send display data from the monitor's thread, addressed to the cell that runs the jobs."""

        def publish(data: dict[str, str], display_id: str, update: bool) -> None:
            kind = "update_display_data" if update else "display_data"
            content = {"data": data, "metadata": {OWN_OUTPUT: "progress"}, "transient": {"display_id": display_id}}
            self.session.send(self.iopub_socket, kind, content, parent=parent, ident=self._topic(kind))

        return publish

    def pre_handler_hook(self) -> None:
        """ipykernel resets SIGINT before each request; make it cancel the cell's Spark jobs first."""
        super().pre_handler_hook()
        signal.signal(signal.SIGINT, self._interrupt)

    def _interrupt(self, signum: int, frame: Any) -> None:
        self._interrupted = True
        self.spark_session.cancel_cell_jobs(in_jvm_call=in_py4j_call(frame))
        raise KeyboardInterrupt

    def _spark_error(self, shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
        """IPython's one custom-exception slot: if its handler ever raises, IPython drops it for good,
        so a fault in ours shows the original error as usual and keeps the handler."""
        try:
            return self._explain_spark_error(shell, etype, value, tb, tb_offset)
        except Exception:
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
            return []

    def _explain_spark_error(self, shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
        """A py4j error from a dead JVM becomes one message with the way out; others show as usual.

        An interrupt can also land mid-call, after which pyspark's cleanup fails on the connection py4j
        just closed: that error stands in the cell for the KeyboardInterrupt the user caused.
        """
        if self._interrupted or interrupted(value):
            stopped = KeyboardInterrupt("interrupted; this cell's Spark jobs were cancelled")
            return self._show_instead(shell, stopped)
        from py4j.protocol import Py4JNetworkError

        # A refused connection may come a moment before the dying JVM is reaped; a Java exception may not wait.
        grace = 2.0 if isinstance(value, (ConnectionError, Py4JNetworkError)) else 0.0
        if self.spark_session.ready and not self.spark_session.jvm_alive(grace):
            gone = SparkJVMGone(
                "The Spark JVM is gone (killed or crashed), so this session cannot run anything more. "
                "Run %spark restart to start a new session; your Python variables are kept."
            )
            return self._show_instead(shell, gone)
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return []

    def _show_instead(self, shell: Any, error: BaseException) -> list[str]:
        """Show ``error`` as the cell's error: one line, and the name the execute_reply will carry."""
        self._shown_error = error
        stb = [f"\x1b[0;31m{type(error).__name__}\x1b[0m: {error}"]
        shell._showtraceback(type(error), error, stb)
        return stb

    # -- session lifecycle ----------------------------------------------------------------------
    def restart_spark(self, conf: dict[str, str] | None = None) -> Any:
        """A new session (merged ``conf`` over earlier %spark conf); Python variables stay."""
        self._push_stand_ins()
        self._announced = None
        spark = self.spark_session.restart(conf)
        self._bind_real_objects(spark)
        return spark

    def stop_spark(self) -> None:
        self.spark_session.stop()
        if self.spark_session.settings.start != "none":
            self._push_stand_ins()

    def do_shutdown(self, restart: bool) -> dict[str, Any]:
        """Stop Spark and its JVM before the process exits: no java process outlives its kernel."""
        if self._progress is not None:
            self._progress.close()
        keep_log = self.spark_session.state in (SessionState.FAILED, SessionState.JVM_GONE)  # the evidence of what went wrong
        self.spark_session.stop()
        log_path = self.spark_session.settings.log_path
        if log_path is not None and log_path.exists() and not keep_log:
            log_path.unlink()
        return super().do_shutdown(restart)


__all__ = ["PySparkKernel", "SparkJVMGone", "SparkStandIn", "SparkStartError"]
