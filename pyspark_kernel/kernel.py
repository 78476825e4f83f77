"""PySparkKernel: ipykernel's IPythonKernel with a SparkSession that starts while you type.

Last step of the data path. The kernel class keeps Jupyter's hooks only: it makes a SparkController
(controller.py), which owns the session and puts ``spark`` and ``sc`` in the user namespace at once, and
calls it around each cell; it turns SIGINT into a cancel of the cell's Spark work; it shows an error
from a dead JVM as what to do about it; it stops Spark on shutdown. Until the session is up, ``spark``
and ``sc`` are stand-ins that wait for it when touched; from the first cell after it is up they are the
real objects, so ``isinstance`` and libraries that check types work.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

from ipykernel.ipkernel import IPythonKernel

from . import __version__, localdirs, prelaunch, shared
from .controller import OWN_OUTPUT, SparkController, SparkStandIn
from .errors import SparkStartError
from .magics import SparkMagics
from .progress import Publisher
from .session import ManagedSession
from .settings import SessionSettings, log_path_for


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


def show_in_cell(data: dict[str, str], metadata: dict[str, str]) -> None:
    from IPython.display import display

    display(data, metadata=metadata, raw=True)


class PySparkKernel(IPythonKernel):
    """An IPython kernel whose namespace has a SparkSession ``spark`` and its SparkContext ``sc``."""

    implementation = "pyspark_kernel"
    implementation_version = __version__
    banner = "PySpark kernel: IPython with a SparkSession as `spark` and its SparkContext as `sc`"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        localdirs.sweep_in_background()  # temp folders of this user's dead JVMs (SIGKILL leaves them)
        log_path = self._log_path()
        # The settings the early JVM (prelaunch.py) was launched with, if there is one: they hold its UI port.
        session = ManagedSession(prelaunch.settings_for(log_path) or SessionSettings.from_environ(log_path=log_path))
        progress = os.environ.get("PYSPARK_KERNEL_PROGRESS", "on").lower() not in ("off", "0", "false", "no")
        self.controller = SparkController(session, self.shell.user_ns, show_in_cell, self._publisher, progress)
        self._interrupted = False  # whether the running cell got SIGINT
        self._shown_error: BaseException | None = None  # what _spark_error showed in its place
        self.shell.register_magics(SparkMagics(self.shell, self.controller))
        from py4j.protocol import Py4JError

        self.shell.set_custom_exc((Py4JError, ConnectionError), self._spark_error)
        logging.getLogger().addFilter(QuietInterruptLog())
        self.controller.start()

    def _log_path(self) -> Path | None:
        """The JVM's log beside the connection file: kernel-<id>.json -> kernel-<id>-spark.log."""
        connection_file = getattr(self.parent, "abs_connection_file", None) if self.parent else None
        return log_path_for(connection_file) if connection_file else None

    def _publisher(self) -> Publisher:
        """Send display data from the monitor's thread, addressed to the cell that runs the jobs."""
        parent = self.get_parent("shell")

        def publish(data: dict[str, str], display_id: str, update: bool) -> None:
            kind = "update_display_data" if update else "display_data"
            content = {"data": data, "metadata": {OWN_OUTPUT: "progress"}, "transient": {"display_id": display_id}}
            self.session.send(self.iopub_socket, kind, content, parent=parent, ident=self._topic(kind))

        return publish

    async def do_execute(self, code: str, silent: bool, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run the cell in the session's job group, with live progress when it runs Spark jobs."""
        self.controller.session.release_start()  # a deferred start begins before any cell, at the latest
        monitor = None
        self._interrupted = False
        if not silent:
            try:
                monitor = self.controller.before_cell()
            except KeyboardInterrupt:  # an interrupt before the cell's code ran: the cell is not run
                self.shell.showtraceback((KeyboardInterrupt, KeyboardInterrupt(), None))
                return {"status": "error", "ename": "KeyboardInterrupt", "evalue": "", "traceback": [], "execution_count": self.shell.execution_count}
            except Exception:  # Spark's trouble is the cell's to report, with its own message
                monitor = None
        else:
            shared.wait_installed()
        self._shown_error = None
        try:
            reply = await super().do_execute(code, silent, *args, **kwargs)
        finally:
            if monitor is not None:
                monitor.end()
        if not silent:
            self.controller.after_cell()
        if self._shown_error is not None and reply.get("status") == "error":
            # The reply names the error the cell showed, not the py4j error underneath it.
            reply.update(ename=type(self._shown_error).__name__, evalue=str(self._shown_error))
        return reply

    async def kernel_info_request(self, stream: Any, ident: Any, parent: Any) -> None:
        """Answer; a deferred start (Spark Connect's) begins once the client has stopped asking, so that
        its client's imports take no CPU from the handshake (bench row 7)."""
        await super().kernel_info_request(stream, ident, parent)
        self.controller.session.client_answered()

    def pre_handler_hook(self) -> None:
        """ipykernel resets SIGINT before each request; make it cancel the cell's Spark jobs first."""
        super().pre_handler_hook()
        signal.signal(signal.SIGINT, self._interrupt)

    def _interrupt(self, signum: int, frame: Any) -> None:
        self._interrupted = True
        self.controller.cancel_cell(in_jvm_call=in_py4j_call(frame))
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
            return self._show_instead(shell, KeyboardInterrupt("interrupted; this cell's Spark jobs were cancelled"))
        from .jvm import from_jvm_connection

        # A connection to the JVM refused may come a moment before the dying JVM is reaped; a Java
        # exception may not wait; a ConnectionError of the user's own sockets is theirs, shown at once.
        from_jvm = from_jvm_connection(value, tb)
        grace = 2.0 if from_jvm else 0.0
        session = self.controller.session
        if (from_jvm or not isinstance(value, ConnectionError)) and session.ready and not session.jvm_alive(grace):
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

    def pool_state(self) -> str:
        """For the provisioner's warm pool (pool.py), asked by a silent execute while no notebook has this kernel."""
        return self.controller.pool_state()

    def hand_over(self, notebook_json: str) -> None:
        """The warm pool gives this running kernel to a notebook: the folder and the per-notebook variables
        it would have started with, and its name for Spark (pool.py sends this as a silent execute)."""
        notebook = json.loads(notebook_json)
        os.chdir(notebook["cwd"])
        for name, value in notebook["env"].items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.controller.adopt_notebook(os.environ.get("JPY_SESSION_NAME"), notebook["cwd"])

    def do_shutdown(self, restart: bool) -> dict[str, Any]:
        """Stop Spark and its JVM before the process exits: no java process outlives its kernel."""
        self.controller.shutdown()
        return super().do_shutdown(restart)


__all__ = ["PySparkKernel", "SparkJVMGone", "SparkStandIn", "SparkStartError"]
