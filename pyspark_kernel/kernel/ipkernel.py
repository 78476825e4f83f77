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
import sys
import threading
from pathlib import Path
from typing import Any

from ipykernel.ipkernel import IPythonKernel

from pyspark_kernel import __version__
from pyspark_kernel.errors import SparkStartError, error_line
from pyspark_kernel.kernel import launchdirs, prelaunch, pyspark_hooks
from pyspark_kernel.kernel.controller import SparkController
from pyspark_kernel.kernel.magics import SparkMagics
from pyspark_kernel.kernel.namespace import OWN_OUTPUT, SparkStandIn
from pyspark_kernel.kernel.progress_display import Publisher
from pyspark_kernel.kernel.session import ManagedSession
from pyspark_kernel.kernel.settings import SessionSettings, log_path_for
from pyspark_kernel.variables import PROGRESS, switch

logger = logging.getLogger(__name__)


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


def drop_interrupted_connection(frame: Any) -> None:
    """Close the py4j connection of the interrupted call before the KeyboardInterrupt reaches py4j.

    py4j (GatewayClient.send_command) answers a KeyboardInterrupt in a call by sending its cancel
    command for that socket on every connection pooled at that moment. The JVM's cancel
    (GatewayServer.shutdownSocket) closes each connection whose local port is the gateway's, which is
    every connection, and interrupts their JVM threads: another thread's call in flight then fails, or
    py4j sends it again on a new connection. py4j does this only while the interrupted connection still
    has a socket, so closing it here, on this thread's own connection alone, leaves py4j nothing to do
    but re-raise. The JVM thread of the call runs on until the call ends, as before.
    """
    connection_types = tuple(
        getattr(sys.modules.get(module), name)
        for module, name in (("py4j.clientserver", "ClientServerConnection"), ("py4j.java_gateway", "GatewayConnection"))
        if hasattr(sys.modules.get(module), name)
    )
    marker = f"{os.sep}py4j{os.sep}"
    while frame is not None:
        if frame.f_code.co_name == "send_command" and marker in frame.f_code.co_filename:
            for held in (frame.f_locals.get("connection"), frame.f_locals.get("self")):
                if isinstance(held, connection_types) and held.socket is not None:
                    held.close()  # shuts the socket down; its buffered reader, mid-read here, closes with it later
                    held.socket = None
        frame = frame.f_back


def interrupted(error: BaseException | None) -> bool:
    """True when ``error`` was raised while handling a KeyboardInterrupt (its implicit context chain)."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, KeyboardInterrupt):
            return True
        error, seen = error.__context__, seen + 1
    return False


def log_to_kernel_log(kernel_log: logging.Logger) -> None:
    """This package's log goes where ipykernel's does (the kernel's stderr, which Jupyter keeps in its
    log). Left to Python's last-resort handler, a warning is written to sys.stderr, which ipykernel
    sends into whatever cell is running."""
    package_log = logging.getLogger(__package__ or "pyspark_kernel")
    for handler in kernel_log.handlers:
        if handler not in package_log.handlers:
            package_log.addHandler(handler)
    package_log.setLevel(kernel_log.getEffectiveLevel())
    package_log.propagate = False


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
        launchdirs.sweep_in_background()  # temp folders of this user's dead JVMs (SIGKILL leaves them)
        log_path = self._log_path()
        # The settings the early JVM (prelaunch.py) was launched with, if there is one: they hold its UI port.
        session = ManagedSession(prelaunch.settings_for(log_path) or SessionSettings.from_environ(log_path=log_path))
        progress = switch(os.environ, PROGRESS) is not False
        self.controller = SparkController(session, self.shell.user_ns, show_in_cell, self._publisher, progress)
        self._interrupted = False  # whether the running cell got SIGINT
        self._phase: str | None = None  # where the main thread's execute request is: see _interrupt
        self._pending_interrupt = False  # SIGINT came before the cell began: it is raised as the cell begins
        self._shown_error: BaseException | None = None  # what _spark_error showed in its place
        self.shell.register_magics(SparkMagics(self.shell, self.controller))
        from py4j.protocol import Py4JError

        self.shell.set_custom_exc((Py4JError, ConnectionError), self._spark_error)
        logging.getLogger().addFilter(QuietInterruptLog())
        log_to_kernel_log(self.log)
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
        """Run the cell in the session's job group, with live progress when it runs Spark jobs.

        Every request gets its reply, wherever an interrupt lands: before the code runs, the cell is
        not run; in the code, IPython shows it; once the code has returned, it is ignored (_interrupt)
        and the reply is the cell's own.
        """
        reply: dict[str, Any] | None = None
        try:
            self._begin_cell()
            if silent:
                pyspark_hooks.wait_installed()
            else:
                self._before_cell()
            reply = await super().do_execute(code, silent, *args, **kwargs)
            self._set_phase("finishing")
        except KeyboardInterrupt:  # outside the cell's code (IPython handles it inside): before it, or around it
            self._set_phase("finishing")
            reply = reply if reply is not None else self._not_run_reply()
        if not silent:
            self.controller.after_cell()  # ends the cell's progress display too
        if self._shown_error is not None and reply.get("status") == "error":
            # The reply names the error the cell showed, not the py4j error underneath it.
            reply.update(ename=type(self._shown_error).__name__, evalue=str(self._shown_error))
        return reply

    def _set_phase(self, phase: str | None) -> None:
        """Only the main thread's requests get SIGINT; a subshell's cell must not move its phase."""
        if threading.current_thread() is threading.main_thread():
            self._phase = phase

    def _begin_cell(self) -> None:
        """From here an interrupt stops the cell; one that came while the request was read is raised now."""
        self._interrupted = False
        self._shown_error = None
        self._set_phase("cell")
        if self._pending_interrupt and threading.current_thread() is threading.main_thread():
            self._pending_interrupt = False
            raise KeyboardInterrupt
        self.controller.session.starter.moment.release()  # a deferred start begins before any cell, at the latest

    def _before_cell(self) -> None:
        """Tag the cell's work and begin its progress. Spark's trouble is the cell's to report, with its
        own message, so here it is only logged; KeyboardInterrupt goes on (the cell is then not run)."""
        try:
            self.controller.before_cell()
        except Exception as error:
            logger.warning("preparing the cell's Spark work failed: %s", error, exc_info=True)

    def _not_run_reply(self) -> dict[str, Any]:
        """The reply of a cell an interrupt stopped outside its code, shown in the cell as IPython shows one inside."""
        self.shell.showtraceback((KeyboardInterrupt, KeyboardInterrupt(), None))
        return {"status": "error", "ename": "KeyboardInterrupt", "evalue": "", "traceback": [], "execution_count": self.shell.execution_count}

    async def kernel_info_request(self, stream: Any, ident: Any, parent: Any) -> None:
        """Answer; a deferred start (Spark Connect's) begins once the client has stopped asking, so that
        its client's imports take no CPU from the handshake (bench row 7)."""
        await super().kernel_info_request(stream, ident, parent)
        self.controller.session.starter.moment.client_answered()

    def should_handle(self, stream: Any, msg: dict[str, Any], idents: Any) -> Any:
        """Note, before SIGINT is ours (pre_handler_hook), whether the main thread's request is a cell's."""
        if threading.current_thread() is threading.main_thread():
            self._phase = "queued" if msg["header"]["msg_type"] == "execute_request" else None
            self._pending_interrupt = False
        return super().should_handle(stream, msg, idents)

    def pre_handler_hook(self) -> None:
        """Make SIGINT cancel the cell's Spark jobs during each request. ipykernel's own hook sets
        default_int_handler first: an interrupt between the two would escape the request unanswered."""
        self.saved_sigint_handler = signal.signal(signal.SIGINT, self._interrupt)

    def _interrupt(self, signum: int, frame: Any) -> None:
        """SIGINT during a request. An execute request's cell is stopped only between its begin and the
        end of its code: one that lands while the request is read is raised as the cell begins (the cell
        is not run), and one that lands after the code has returned, while the kernel finishes the cell
        (progress summary, session line) or sends the reply, is ignored, as ipykernel ignores one between
        requests. Other requests are interrupted as ipykernel's default handler does."""
        if self._phase == "finishing":
            return
        if self._phase == "queued":
            self._pending_interrupt = True
            return
        self._interrupted = True
        in_jvm_call = in_py4j_call(frame)
        self.controller.cancel_cell(in_jvm_call=in_jvm_call)
        if in_jvm_call:
            drop_interrupted_connection(frame)
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
        from pyspark_kernel.kernel.jvm import from_jvm_connection

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
        stb = [error_line(error)]
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
