"""PySparkKernel: ipykernel's IPythonKernel with a SparkSession that starts while you type.

Last step of the data path. The kernel class keeps Jupyter's hooks only: it makes a SparkController
(controller.py), which owns the session and puts ``spark`` and ``sc`` in the user namespace at once, and
calls it around each cell; it turns SIGINT into a cancel of the cell's Spark work (interrupts.py); it
shows an error from a dead JVM as what to do about it (cellerrors.py); it stops Spark on shutdown. Until the session is up, ``spark``
and ``sc`` are stand-ins that wait for it when touched; from the first cell after it is up they are the
real objects, so ``isinstance`` and libraries that check types work.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ipykernel.ipkernel import IPythonKernel

from pyspark_kernel import __version__
from pyspark_kernel.errors import SparkStartError
from pyspark_kernel.kernel import completion, frametable, launchdirs, prelaunch, pyspark_hooks
from pyspark_kernel.kernel.cellerrors import SparkErrorHandler, SparkJVMGone
from pyspark_kernel.kernel.controller import SparkController
from pyspark_kernel.kernel.interrupts import CellInterrupts, QuietInterruptLog
from pyspark_kernel.kernel.magics import SparkMagics
from pyspark_kernel.kernel.namespace import OWN_OUTPUT, SparkStandIn
from pyspark_kernel.kernel.progress_display import Publisher
from pyspark_kernel.kernel.session import ManagedSession
from pyspark_kernel.kernel.settings import SessionSettings, log_path_for
from pyspark_kernel.variables import PROGRESS, progress_mode

logger = logging.getLogger(__name__)


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

    display(data, metadata=metadata, raw=True)  # type: ignore[no-untyped-call]  # IPython.display is untyped


def dress_shell(shell: Any, magics: SparkMagics) -> None:
    """What the kernel adds to IPython's shell: %spark and %%sql, and DataFrames shown as tables with
    their column types (frametable.py)."""
    shell.register_magics(magics)
    frametable.register(shell)


def take_notebook_place(cwd: str, env: dict[str, str | None]) -> None:
    """A pooled kernel handed to a notebook: its folder, and its per-notebook variables (None: unset)."""
    os.chdir(cwd)
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class PySparkKernel(IPythonKernel):
    """An IPython kernel whose namespace has a SparkSession ``spark`` and its SparkContext ``sc``."""

    implementation = "pyspark_kernel"
    implementation_version = __version__
    banner = "PySpark kernel: IPython with a SparkSession as `spark` and its SparkContext as `sc`"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]  # ipykernel is untyped
        # The JVM's launch begins only now, with ipykernel imported and its shell built: begun before
        # (as until 0.1), its start took the CPU the kernel's first kernel_info reply waits on, on 2
        # cores +86 ms idle to +1 s loaded (bench row 1), and the first count gained nothing measurable.
        prelaunch.begin(sys.argv[1:])
        shell = self.shell
        assert shell is not None, "IPythonKernel.__init__ makes the shell"
        launchdirs.sweep_in_background()  # temp folders of this user's dead JVMs (SIGKILL leaves them)
        log_path = self._log_path()
        # The settings the early JVM (prelaunch.py) was launched with, if there is one: they hold its UI port.
        session = ManagedSession(prelaunch.settings_for(log_path) or SessionSettings.from_environ(log_path=log_path))
        progress = progress_mode(os.environ.get(PROGRESS.name, "")) or "full"
        self.controller = SparkController(session, shell.user_ns, show_in_cell, self._publisher, progress)
        self._errors = SparkErrorHandler(session)  # how a cell shows an error of its Spark calls
        self._interrupts = CellInterrupts(self.controller.cancel_cell, self._errors.note_interrupt)  # what SIGINT does
        dress_shell(shell, SparkMagics(shell, self.controller))
        shell.set_custom_exc(self._errors.handled(), self._errors)
        logging.getLogger().addFilter(QuietInterruptLog())
        log_to_kernel_log(self.log)
        self.controller.start()

    def _log_path(self) -> Path | None:
        """The JVM's log beside the connection file: kernel-<id>.json -> kernel-<id>-spark.log."""
        connection_file = getattr(self.parent, "abs_connection_file", None) if self.parent else None
        return log_path_for(connection_file) if connection_file else None

    def _publisher(self) -> Publisher:
        """Send display data from the monitor's thread, addressed to the cell that runs the jobs."""
        parent = self.get_parent("shell")  # type: ignore[no-untyped-call]  # ipykernel is untyped
        session = self.session
        assert session is not None, "a kernel that runs cells has its Session"

        def publish(data: dict[str, str], display_id: str, update: bool) -> None:
            kind = "update_display_data" if update else "display_data"
            content = {"data": data, "metadata": {OWN_OUTPUT: "progress"}, "transient": {"display_id": display_id}}
            topic = self._topic(kind)  # type: ignore[no-untyped-call]  # ipykernel is untyped
            session.send(self.iopub_socket, kind, content, parent=parent, ident=topic)

        return publish

    async def do_execute(self, code: str, silent: bool, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run the cell in the session's job group, with live progress when it runs Spark jobs.

        Every request gets its reply, wherever an interrupt lands: before the code runs, the cell is
        not run; in the code, IPython shows it; once the code has returned, it is ignored (interrupts.py)
        and the reply is the cell's own.
        """
        reply: dict[str, Any] | None = None
        try:
            self._begin_cell()
            if silent:
                pyspark_hooks.wait_installed()
            else:
                self._before_cell()
            reply = await super().do_execute(code, silent, *args, **kwargs)  # type: ignore[no-untyped-call]  # ipykernel is untyped
            self._interrupts.set_phase("finishing")
        except KeyboardInterrupt:  # outside the cell's code (IPython handles it inside): before it, or around it
            self._interrupts.set_phase("finishing")
            reply = reply if reply is not None else self._not_run_reply()
        if not silent:
            self.controller.after_cell()  # ends the cell's progress display too
        self._errors.name_in_reply(reply)
        return reply

    def _begin_cell(self) -> None:
        """From here an interrupt stops the cell; one that came while the request was read is raised now."""
        self._errors.begin_cell()
        self._interrupts.cell_begins()
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
        shell = self.shell
        assert shell is not None, "IPythonKernel.__init__ makes the shell"
        shell.showtraceback((KeyboardInterrupt, KeyboardInterrupt(), None))
        return {"status": "error", "ename": "KeyboardInterrupt", "evalue": "", "traceback": [], "execution_count": shell.execution_count}

    def do_complete(self, code: str, cursor_pos: int | None) -> dict[str, Any]:  # type: ignore[override]  # ipykernel: sync or async
        """Spark's names where IPython has none (completion.py): %%sql cells, a DataFrame's column strings."""
        reply = completion.reply_for(code, cursor_pos, self.shell.user_ns if self.shell else {}, self.controller.session)
        return reply if reply is not None else super().do_complete(code, cursor_pos)  # type: ignore[no-untyped-call]  # ipykernel is untyped

    async def kernel_info_request(self, stream: Any, ident: Any, parent: Any) -> None:
        """Answer; a deferred start (Spark Connect's) begins once the client has stopped asking, so that
        its client's imports take no CPU from the handshake (bench row 7)."""
        await super().kernel_info_request(stream, ident, parent)  # type: ignore[no-untyped-call]  # ipykernel is untyped
        self.controller.session.starter.moment.client_answered()

    def should_handle(self, stream: Any, msg: dict[str, Any], idents: Any) -> Any:
        """Note, before SIGINT is ours (pre_handler_hook), whether the main thread's request is a cell's."""
        self._interrupts.request_read(msg["header"]["msg_type"])
        return super().should_handle(stream, msg, idents)  # type: ignore[no-untyped-call]  # ipykernel is untyped

    def pre_handler_hook(self) -> None:
        """Make SIGINT cancel the cell's Spark jobs during each request. ipykernel's own hook sets
        default_int_handler first: an interrupt between the two would escape the request unanswered."""
        self.saved_sigint_handler = signal.signal(signal.SIGINT, self._interrupts.handle)

    def pool_state(self) -> str:
        """For the provisioner's warm pool (pool.py), asked by a silent execute while no notebook has this kernel."""
        return self.controller.pool_state()

    def hand_over(self, notebook_json: str) -> None:
        """The warm pool gives this running kernel to a notebook: the folder and the per-notebook variables
        it would have started with, and its name for Spark (pool.py sends this as a silent execute)."""
        notebook = json.loads(notebook_json)
        take_notebook_place(notebook["cwd"], notebook["env"])
        self.controller.adopt_notebook(os.environ.get("JPY_SESSION_NAME"), notebook["cwd"])

    def do_shutdown(self, restart: bool) -> dict[str, Any]:  # type: ignore[override]  # sync as IPythonKernel's; ipykernel awaits either
        """Stop Spark and its JVM before the process exits: no java process outlives its kernel."""
        self.controller.shutdown()
        reply: dict[str, Any] = super().do_shutdown(restart)  # type: ignore[no-untyped-call]  # ipykernel is untyped
        return reply


__all__ = ["PySparkKernel", "SparkJVMGone", "SparkStandIn", "SparkStartError"]
