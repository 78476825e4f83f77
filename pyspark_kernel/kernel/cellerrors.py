"""How a cell shows an error from Spark: a dead JVM's py4j error as what to do about it, an error
that an interrupt caused as the interrupt, and in a Spark Connect kernel a use of RDDs, ``sc`` or
SparkContext as the one message that names the classic kernelspec (connectlimits.py).

The kernel (ipkernel.py) registers a SparkErrorHandler as IPython's custom handler for the errors it
names (:meth:`SparkErrorHandler.handled`), tells it when a cell begins and when SIGINT lands, and lets
it name, in the cell's execute_reply, the error it showed in place of the original.
"""

from __future__ import annotations

import os
from typing import Any

from pyspark_kernel.errors import error_line
from pyspark_kernel.kernel import connectlimits
from pyspark_kernel.kernel.session import ManagedSession
from pyspark_kernel.localserver import is_local_remote


class SparkJVMGone(RuntimeError):
    """Shown in place of the py4j error a call into a dead JVM raises."""


class SparkServerGone(RuntimeError):
    """Shown in place of the gRPC error of a cell whose shared local Connect server died under it."""


SERVER_GONE = SparkServerGone(
    "The local Spark Connect server stopped while this cell ran (killed, or out of memory), so this cell's Spark work is lost. "
    "Run the cell again: the next cell starts a new server with a new session, and says what went with the old one."
)


def interrupted(error: BaseException | None) -> bool:
    """True when ``error`` was raised while handling a KeyboardInterrupt (its implicit context chain)."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, KeyboardInterrupt):
            return True
        error, seen = error.__context__, seen + 1
    return False


def raised_in_pyspark(tb: Any) -> bool:
    """Whether the error's last frame is pyspark's own code: an error that pyspark's cleanup raised while
    an interrupt unwound it is the interrupt's doing; one of the user's own cleanup code is theirs to see."""
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and f"{os.sep}pyspark{os.sep}" in tb.tb_frame.f_code.co_filename


class SparkErrorHandler:
    """IPython's custom exception handler for the errors of a cell's Spark calls, per cell."""

    def __init__(self, session: ManagedSession) -> None:
        self.session = session
        self.interrupted = False  # whether the running cell got SIGINT
        self.shown: BaseException | None = None  # what was shown in place of the cell's error

    def note_interrupt(self) -> None:
        """SIGINT is about to stop the running cell's code: what its calls raise now is the interrupt's doing."""
        self.interrupted = True

    def handled(self) -> tuple[type[BaseException], ...]:
        """What IPython hands to this handler: every error, since one that pyspark raises while an interrupt
        unwinds it can be of any kind (its socket reader raises UnboundLocalError from its ``finally`` when
        SIGINT lands before its socket exists). Only Spark's errors (spark_errors) and those are explained;
        the rest show as IPython shows them."""
        return (Exception,)

    def spark_errors(self) -> tuple[type[BaseException], ...]:
        """The errors of Spark calls: py4j's and connection errors; in a Spark Connect kernel also the
        kinds of error that Connect's missing SparkContext raises."""
        from py4j.protocol import Py4JError

        remote = self.session.backend.remote
        connect = connectlimits.WATCHED if remote else ()
        # A shared local server's death reaches a running cell as pyspark's gRPC error, whose class is not
        # imported this early (pyspark's import would hold up the kernel's first answer): take every error,
        # and show all but that one as IPython would.
        return (Exception,) if is_local_remote(remote) else (Py4JError, ConnectionError, *connect)

    def begin_cell(self) -> None:
        self.interrupted = False
        self.shown = None

    def name_in_reply(self, reply: dict[str, Any]) -> None:
        """The reply names the error the cell showed, not the py4j error underneath it."""
        if self.shown is not None and reply.get("status") == "error":
            reply.update(ename=type(self.shown).__name__, evalue=str(self.shown))

    def __call__(self, shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
        """IPython's one custom-exception slot: if its handler ever raises, IPython drops it for good,
        so a fault in ours shows the original error as usual and keeps the handler."""
        try:
            return self._explain(shell, etype, value, tb, tb_offset)
        except Exception:
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
            return []

    def _explain(self, shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
        """A py4j error from a dead JVM becomes one message with the way out; others show as usual.

        An interrupt can also land mid-call, after which pyspark's cleanup fails on the connection py4j
        just closed: that error stands in the cell for the KeyboardInterrupt the user caused.
        """
        spark_error = isinstance(value, self.spark_errors())
        if (spark_error and (self.interrupted or interrupted(value))) or (interrupted(value) and raised_in_pyspark(tb)):
            return self._show_instead(shell, KeyboardInterrupt("interrupted; this cell's Spark jobs were cancelled"))
        if not spark_error:
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
            return []
        if self.session.backend.lost() is not None:
            return self._show_instead(shell, SERVER_GONE)
        remote = self.session.backend.remote
        if remote and isinstance(value, connectlimits.WATCHED):
            return self._connect_limit(shell, remote, (etype, value, tb), tb_offset)
        from pyspark_kernel.kernel.jvm import from_jvm_connection

        # A connection to the JVM refused may come a moment before the dying JVM is reaped; a Java
        # exception may not wait; a ConnectionError of the user's own sockets is theirs, shown at once.
        from_jvm = from_jvm_connection(value, tb)
        grace = 2.0 if from_jvm else 0.0
        session = self.session
        if (from_jvm or not isinstance(value, ConnectionError)) and session.ready and not session.jvm_alive(grace):
            gone = SparkJVMGone(
                "The Spark JVM is gone (killed or crashed), so this session cannot run anything more. "
                "Run %spark restart to start a new session; your Python variables are kept."
            )
            return self._show_instead(shell, gone)
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return []

    def _connect_limit(self, shell: Any, remote: str, exc_info: tuple[type, BaseException, Any], tb_offset: int | None) -> list[str]:
        """A use of what Spark Connect lacks becomes the one message; any other error shows as usual.
        pyspark's error stays the last error (sys.last_value), as IPython keeps it, so %tb shows it."""
        limit = connectlimits.explain(exc_info[1], remote)
        if limit is None:
            shell.showtraceback(exc_info, tb_offset=tb_offset, running_compiled_code=True)
            return []
        shell._get_exc_info(exc_info)  # stores sys.last_type/value/traceback, which %tb prints
        return self._show_instead(shell, limit)

    def _show_instead(self, shell: Any, error: BaseException) -> list[str]:
        """Show ``error`` as the cell's error: one line, and the name the execute_reply will carry."""
        self.shown = error
        stb = [error_line(error)]
        shell._showtraceback(type(error), error, stb)
        return stb
