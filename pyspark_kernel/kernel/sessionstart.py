"""A session's start in the background: when it may begin, the thread it runs on, and its outcome.

A start runs on a thread of its own so that the kernel answers at once; at most one is in flight, and
whoever needs the session (pyspark_hooks.py's entry points, ``spark``, %spark) waits for it. A deferred
start (a backend's ``defer_start``: Spark Connect's) waits for the kernel's first kernel_info answer and
then for the client to stop asking: the Spark Connect client's imports take a second of CPU that the
client's handshake would wait for (bench row 7). Anyone who needs Spark (a cell, a user's builder, a
stop) lets it begin at once. The session (session.py) owns one BackgroundStart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pyspark_kernel.errors import Problem, SparkStartError
from pyspark_kernel.kernel import prelaunch

DEFERRED_START_SECONDS = 5.0  # the longest a deferred start waits for its moment (no client ever asked)
ANSWERED_QUIET_SECONDS = 0.5  # after the last kernel_info answer: a client asks again until its IOPub hears


class StartMoment:
    """The moment a start may begin, and whether a stop abandoned a deferred start before it came."""

    def __init__(self, deferred: bool) -> None:
        self._lock = threading.Lock()
        self._may_begin = threading.Event()  # set once a start may begin at once
        self._answered = threading.Event()  # set by the first kernel_info answer (or by release)
        if not deferred:
            self._may_begin.set()
            self._answered.set()
        self._answered_at: float | None = None  # when the kernel last answered a kernel_info request
        self._abandoned = False  # stopped before a deferred start began: it never will

    def renew(self) -> None:
        """A new start is on its way: a stop before it no longer holds."""
        with self._lock:
            self._abandoned = False

    def release(self) -> None:
        """Let a deferred start begin now: a cell is about to run, or someone waits for Spark."""
        self._may_begin.set()
        self._answered.set()

    def hurry(self) -> None:
        """Someone waits for the session: once the client has been answered, no quiet time is waited for."""
        self._may_begin.set()

    def client_answered(self) -> None:
        """The kernel answered a kernel_info request: a deferred start begins once none came for
        ANSWERED_QUIET_SECONDS (jupyter_client asks again until its IOPub channel hears the kernel)."""
        self._answered_at = time.monotonic()
        self._answered.set()

    def wait(self) -> bool:
        """Wait for a deferred start's moment; False when the session was stopped before it came."""
        self._answered.wait(DEFERRED_START_SECONDS)
        while not self._may_begin.is_set() and self._answered_at is not None:
            quiet_until = self._answered_at + ANSWERED_QUIET_SECONDS  # each answer moves it later
            if quiet_until <= time.monotonic():
                break
            self._may_begin.wait(quiet_until - time.monotonic())
        with self._lock:
            self._may_begin.set()
            return not self._abandoned

    def abandon(self) -> None:
        """A stop: a deferred start that has not begun never will; one on its way goes on to its end."""
        with self._lock:
            self._abandoned = not self._may_begin.is_set()
        self.release()


class BackgroundStart:
    """One start at a time, on a thread of its own: ``create()`` makes the session, ``on_ready()`` runs
    after a start that made one. Keeps why the last start failed, and how long it took."""

    def __init__(self, deferred: bool, create: Callable[[], None], on_ready: Callable[[], None]) -> None:
        self.moment = StartMoment(deferred)
        self._create = create
        self._on_ready = on_ready
        self.settled = threading.Event()  # set while no start is in flight
        self.settled.set()
        self.thread: threading.Thread | None = None
        self.error: Problem | None = None  # why the last start made no session
        self.started_at: float | None = None
        self.seconds: float | None = None  # how long the last start took, its wait for its moment left out

    def begin(self) -> None:
        """Begin a start now; the caller makes sure none is in flight."""
        self.error = None
        self.moment.renew()
        self.started_at = time.monotonic()
        self.settled.clear()
        self.thread = threading.Thread(target=self._run, name="pyspark-kernel-start", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        if not self.moment.wait():
            self.settled.set()
            return
        self.started_at = time.monotonic()  # the start's own seconds, not those it waited for its moment
        try:
            self._create()
        except BaseException as error:  # the kernel must stay up: keep the reason for whoever asks
            self.error = error if isinstance(error, Problem) else SparkStartError(f"Spark could not start: {type(error).__name__}: {error}")
        finally:
            prelaunch.discard()  # an early JVM this start did not take (it failed first) would idle until the kernel exits
            if self.started_at is not None:
                self.seconds = time.monotonic() - self.started_at
            self.settled.set()
        if self.error is None:
            self._on_ready()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a start in flight to end, letting a deferred one begin at once; False on timeout."""
        self.moment.hurry()
        return self.settled.wait(timeout)

    def is_own_thread(self) -> bool:
        return threading.current_thread() is self.thread
