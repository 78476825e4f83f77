"""What SIGINT does to the running request: where the main thread's execute request is decides it.

An execute request's cell is stopped only between its begin and the end of its code: an interrupt that
lands while the request is read is raised as the cell begins (the cell is not run), and one that lands
after the code has returned, while the kernel finishes the cell (progress summary, session line) or
sends the reply, is ignored, as ipykernel ignores one between requests. Inside the cell's code it
cancels the cell's Spark work and, when it lands inside a call into the JVM, closes that call's py4j
connection first (drop_interrupted_connection). The kernel (ipkernel.py) tells a CellInterrupts where
its requests are and installs its handler for each request.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any


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


class CellInterrupts:
    """Where the main thread's execute request is (queued, cell, finishing), and SIGINT's handler.

    ``cancel(in_jvm_call)`` cancels the running cell's Spark work (never blocks); ``noted()`` is called
    when an interrupt is about to stop the cell's code.
    """

    def __init__(self, cancel: Callable[[bool], None], noted: Callable[[], None]) -> None:
        self.cancel = cancel
        self.noted = noted
        self.phase: str | None = None  # where the main thread's execute request is
        self.pending = False  # SIGINT came before the cell began: it is raised as the cell begins

    def request_read(self, msg_type: str) -> None:
        """A request was read, before SIGINT is ours (pre_handler_hook): note whether it is a cell's."""
        if threading.current_thread() is threading.main_thread():
            self.phase = "queued" if msg_type == "execute_request" else None
            self.pending = False

    def set_phase(self, phase: str | None) -> None:
        """Only the main thread's requests get SIGINT; a subshell's cell must not move its phase."""
        if threading.current_thread() is threading.main_thread():
            self.phase = phase

    def cell_begins(self) -> None:
        """From here an interrupt stops the cell; one that came while the request was read is raised now."""
        self.set_phase("cell")
        if self.pending and threading.current_thread() is threading.main_thread():
            self.pending = False
            raise KeyboardInterrupt

    def handle(self, signum: int, frame: Any) -> None:
        """SIGINT during a request (see the module's docstring). Other requests than a cell's are
        interrupted as ipykernel's default handler does."""
        if self.phase == "finishing":
            return
        if self.phase == "queued":
            self.pending = True
            return
        self.noted()
        in_jvm_call = in_py4j_call(frame)
        self.cancel(in_jvm_call)
        if in_jvm_call:
            drop_interrupted_connection(frame)
        raise KeyboardInterrupt
