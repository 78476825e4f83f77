"""Own the kernel's SparkSession: start it in the background, wait for it, stop, restart.

Fourth step of the data path: SessionSettings (settings.py) -> a SparkSession, made by the backend of
its kind (classic.py on a local JVM, connect.py on a Spark Connect server), on a start thread of its
own (sessionstart.py). It knows nothing of Jupyter, so it can be tested and benchmarked on its own.

The session is shared with user code, as in the pyspark shell: a notebook's own
``SparkSession.builder.getOrCreate()`` waits for the kernel's start and returns its session, and a
session user code stops or builds anew is the kernel's from then on (pyspark_hooks.py holds the hooks).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from enum import Enum
from typing import Any

from pyspark_kernel.errors import SparkStartError
from pyspark_kernel.kernel import jvm, pyspark_hooks
from pyspark_kernel.kernel.backends.base import Backend, backend_for
from pyspark_kernel.kernel.sessionstart import BackgroundStart
from pyspark_kernel.kernel.settings import SessionSettings

STOP_WAITS_FOR_START_SECONDS = 1.0


class SessionState(str, Enum):
    """Where this kernel's session is; derived from pyspark's state and the JVM, never assigned."""

    NOT_STARTED = "not started"
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"  # by spark.stop() in user code or %spark stop
    JVM_GONE = "JVM gone"  # killed or crashed under a session


STOPPED_ERROR = SparkStartError(
    "The SparkSession was stopped (spark.stop() or %spark stop).",
    "build a new one with SparkSession.builder.getOrCreate() (the kernel adopts it), or run %spark restart.",
)


def derive_state(*, starting: bool, jvm_gone: bool, live: bool, failed: bool, ended: bool) -> SessionState:
    """The state from what can be observed, in order of precedence: a start in flight, then a JVM that
    died under its session, then a live session (whoever made it), then why there is none."""
    if starting:
        return SessionState.STARTING
    if jvm_gone:
        return SessionState.JVM_GONE
    if live:
        return SessionState.READY
    if failed:
        return SessionState.FAILED
    return SessionState.STOPPED if ended else SessionState.NOT_STARTED


class ManagedSession:
    """The SparkSession this kernel process shares with its user code, and the JVM under it.

    The kernel starts a session in the background; user code may stop it and build another, or build
    the first one itself (``--start lazy``/``none``). Whichever session pyspark holds as current is this
    kernel's: pyspark_hooks.py makes pyspark's entry points wait for a start in flight and send every JVM
    launch through :meth:`launch_gateway`. Safe to call from any thread.
    """

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.backend: Backend = backend_for(settings, self.jvm_alive)
        self.remote = settings.remote  # read by pyspark_hooks.py's hooks
        self.conf_overrides: dict[str, str] = {}  # from %spark conf: merged over everything else
        self.notice: Callable[[str], None] = lambda text: warnings.warn(text, stacklevel=3)
        self.on_ready: Callable[[], None] = lambda: None  # called on the start thread once a start made a session
        self.waiting: Callable[[], AbstractContextManager[object]] = nullcontext  # a cell's wait for a start in flight (waitline.py)
        self.waited: Callable[[], None] = lambda: None  # after that wait: the cell's job view begins (controller.py)
        self._lock = threading.Lock()
        self.starter = BackgroundStart(self.backend.defer_start, self._create, lambda: self.on_ready())
        self._gateway: Any = None  # the JVM launched in this process, whoever asked for it
        self._had_session = False
        self._stopped = False

    @property
    def session(self) -> Any:
        """The live session user code and the kernel share, or None (no JVM call)."""
        live = self.backend.live_session()
        if live is not None:
            self._had_session = True
        return live

    @property
    def state(self) -> SessionState:
        starting = not self.starter.settled.is_set()
        return derive_state(
            starting=starting,
            jvm_gone=not starting and self._gateway is not None and not self.jvm_alive(),
            live=not starting and self.session is not None,
            failed=self.starter.error is not None,
            ended=self._had_session or self._stopped,
        )

    @property
    def ready(self) -> bool:
        """True while a session is up and no start is in flight."""
        return self.starter.settled.is_set() and self.session is not None

    def jvm_alive(self, grace: float = 0.0) -> bool:
        return jvm.is_alive(self._gateway, grace)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Begin creating the session in a background thread; returns at once. Does nothing while a
        session is up or a start is in flight."""
        with self._lock:
            if not self.starter.settled.is_set() or self.session is not None:
                return
            self._stopped = False
            self.starter.begin()

    def _create(self) -> None:
        """On the start thread: the session, made (or joined) by the backend."""
        pyspark_hooks.install(self)  # before user code can race this start (lazy/none kernels did it earlier)
        gateway_before = self._gateway
        self.backend.create(self.conf_overrides, launched=lambda: self._gateway is not gateway_before)

    def wait_for_start(self) -> None:
        """Block until a start in flight has ended (any thread but the start thread itself)."""
        if not self.is_start_thread():
            self._wait(None)

    def _wait(self, timeout: float | None) -> bool:
        """Wait for a start in flight, in a cell's live wait line (controller.py) when one is in flight."""
        if self.starter.settled.is_set():
            return True
        with self.waiting():
            settled = self.starter.wait(timeout)
        self.waited()
        return settled

    def is_start_thread(self) -> bool:
        return self.starter.is_own_thread()

    def get(self, timeout: float | None = None) -> Any:
        """The shared session, waiting for a start in flight; starts one when none was ever made."""
        if self.state is SessionState.NOT_STARTED:
            self.start()
        if not self._wait(timeout):
            raise TimeoutError(f"Spark did not start within {timeout} s")
        session = self.session
        if session is not None:
            return session
        error = self.starter.error or STOPPED_ERROR
        raise SparkStartError(error.problem, error.fix) from None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the session and make sure its JVM exits (stdin closed, then terminate, then kill).

        A start still in flight after a moment is stuck in the JVM (a driver waiting for a debugger, a
        YARN queue, --packages resolving): the JVMs this process launched are ended, so the start fails
        at once and leaves nothing behind. The moment is short: Jupyter sends SIGTERM 2.5 s after its
        shutdown request, and a JVM that never started its gateway would outlive the kernel. A deferred
        start that has not begun is abandoned.
        """
        self.starter.moment.abandon()
        if not self.starter.settled.wait(STOP_WAITS_FOR_START_SECONDS):
            jvm.end_child_jvms()
            self.starter.settled.wait(60)
        session = self.session
        gateway = self._gateway or jvm.pyspark_gateway()
        with self._lock:
            self._gateway = None
            self.backend.forget()
            self._stopped = True
        try:
            if session is not None:
                try:
                    session.stop()
                except Exception:  # a dead JVM cannot stop cleanly; the process is reaped below
                    pass
        finally:  # also when an interrupt lands in session.stop(): the JVM is no one's once forgotten here
            if gateway is not None:
                jvm.stop_gateway(gateway, timeout)

    def launch_gateway(self, conf: Any = None) -> Any:
        """Launch the JVM for whoever asks (the kernel's start, a user's builder, %spark restart), with
        its output in the kernel's log (jvm.py); remembered, so that stop and shutdown end it."""
        self._gateway = jvm.launch(self.settings, self.conf_overrides, conf)
        return self._gateway
