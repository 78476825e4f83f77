"""Build and own the kernel's SparkSession: start it in the background, wait for it, stop, restart.

Fourth step of the data path: the kernel process's environment (SPARK_HOME, PYSPARK_SUBMIT_ARGS or
SPARK_REMOTE, PYSPARK_KERNEL_START) -> a SparkSession. It knows nothing of Jupyter, so it can be tested
and benchmarked on its own.

The session is shared with user code, as in the pyspark shell: a notebook's own
``SparkSession.builder.getOrCreate()`` waits for the kernel's start and returns its session, and a
session user code stops or builds anew is the kernel's from then on (shared.py holds the hooks).

Every JVM of the process is launched with pyspark's own ``launch_gateway`` but with its output sent to a
log file: a JVM started in the background would otherwise write its start-up chatter into whichever
notebook cell happens to be running, and a failed start would leave only "Java gateway process exited".
With the log the error names the cause (no Java, a heap the machine cannot give, a broken SPARK_HOME)
and the fix.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterator

from . import environment, shared
from .ports import free_port

logger = logging.getLogger(__name__)

# Notebook defaults, each applied unless the kernelspec's --conf sets it.
NOTEBOOK_DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",  # the console bar would land in cells as stderr noise
    "spark.sql.repl.eagerEval.enabled": "true",  # DataFrames render as tables in notebooks
    "spark.sql.repl.eagerEval.maxNumRows": "20",
}
DEFAULT_LOG_LEVEL = "WARN"
LOG_TAIL_LINES = 12
STOP_WAITS_FOR_START_SECONDS = 1.0
CANCEL_MIN_SECONDS = 10.0  # how long an interrupted cell's group is cancelled again as jobs appear
CANCEL_WATCH_SECONDS = 600.0  # the longest an interrupted JVM call is followed for jobs it still submits
CANCEL_POLL_SECONDS = 0.1

# Known lines in a failed JVM's output -> what the user should do.
DIAGNOSES = (
    ("Could not reserve enough space", "the JVM could not get the heap it was asked for. Fix: lower --driver-memory (or spark.driver.memory) to fit this machine's memory."),
    ("Invalid maximum heap size", "the driver memory setting is not a valid size. Fix: use a size like 2g for --driver-memory."),
    ("Cannot allocate memory", "the machine has not enough free memory for the JVM. Fix: lower --driver-memory or free memory."),
    ("UnsupportedClassVersionError", "this Java is too old for this Spark. Fix: install Java 17 or 21 and set JAVA_HOME to it."),
    ("JAVA_HOME is not set", "Spark found no Java. Fix: install Java 17 or 21 (apt-get install default-jre-headless) or set JAVA_HOME."),
    ("Failed to find Spark jars directory", "SPARK_HOME has no jars. Fix: point the kernelspec at a complete Spark (pyspark-kernel install --spark-home PATH --replace)."),
    ("No such file or directory", "a file Spark needs is missing. Fix: check SPARK_HOME and JAVA_HOME in the kernelspec (pyspark-kernel check NAME)."),
)


class SparkStartError(RuntimeError):
    """Spark could not start (or is gone); the message says why and what to do.

    ``_render_traceback_`` makes IPython show just the message, not a traceback through this module.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


@dataclass(frozen=True)
class SessionSettings:
    """How this kernel's session is to be made, read from the process environment."""

    start: str = "eager"  # eager | lazy | none
    remote: str | None = None  # Spark Connect URL (SPARK_REMOTE): no local JVM
    app_name: str = "pyspark-kernel"
    submit_args: str = "pyspark-shell"
    log_path: Path | None = None
    defaults: dict[str, str] = field(default_factory=dict)  # extra per-launch conf, under the user's

    ui_proxy: str | None = None  # route prefix of a proxy to the Spark UI, e.g. /user/alice/proxy/

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None, log_path: Path | None = None) -> SessionSettings:
        environ = dict(os.environ if environ is None else environ)
        settings = cls(
            start=environ.get("PYSPARK_KERNEL_START", "eager"),
            remote=environ.get("SPARK_REMOTE") or None,
            # jupyter_server names the notebook in JPY_SESSION_NAME: the Spark UI then says whose app it is.
            app_name=environ.get("JPY_SESSION_NAME") or "pyspark-kernel",
            submit_args=environ.get("PYSPARK_SUBMIT_ARGS", "pyspark-shell"),
            log_path=log_path,
            ui_proxy=ui_proxy_prefix(environ),
        )
        if settings.ui_proxy and not settings.remote:
            # Behind a proxy the UI's port must be known before Spark starts, to set its proxyBase.
            port = int(settings.user_conf().get("spark.ui.port") or free_port(4040))
            settings.defaults.update({"spark.ui.port": str(port), "spark.ui.proxyBase": f"{settings.ui_proxy}{port}"})
        return settings

    def user_conf(self) -> dict[str, str]:
        """The ``--conf KEY=VALUE`` pairs in PYSPARK_SUBMIT_ARGS, which outrank every default here;
        read with the parser of the module that wrote them."""
        from .kernelspec import submit_settings

        return submit_settings(self.submit_args)[1]

    def launch_submit_args(self, overrides: dict[str, str]) -> str:
        """PYSPARK_SUBMIT_ARGS for a JVM launch: the kernelspec's, the notebook defaults it does not set,
        then ``overrides`` (%spark conf) last, so they win and reach the JVM's own start.

        The defaults ride on spark-submit's command line, not on one SparkConf, so every session of this
        JVM has them, including one a user's builder makes after spark.stop(); a builder's own
        settings still win over them. They also outrank what spark-submit implies for a shell (it
        turns the console progress bar on and names the app "pyspark-shell").
        """
        from .kernelspec import with_conf

        user_conf = self.user_conf()
        kernel_conf = {**NOTEBOOK_DEFAULTS, "spark.app.name": self.app_name, **self.defaults}
        defaults = {key: value for key, value in kernel_conf.items() if key not in user_conf}
        return with_conf(with_conf(self.submit_args, defaults), overrides)


def ui_proxy_prefix(environ: dict[str, str]) -> str | None:
    """Where the browser reaches this machine's ports through the notebook server, if it must.

    PYSPARK_KERNEL_UI_PROXY says so explicitly; under JupyterHub (JUPYTERHUB_SERVICE_PREFIX) or a
    server that passed its base URL (PYSPARK_KERNEL_BASE_URL) it is ``<base>proxy/`` when
    jupyter-server-proxy is installed, since only then does that route exist.
    """
    explicit = environ.get("PYSPARK_KERNEL_UI_PROXY")
    if explicit:
        return explicit.rstrip("/") + "/"
    base = environ.get("JUPYTERHUB_SERVICE_PREFIX") or environ.get("PYSPARK_KERNEL_BASE_URL")
    if base:
        import importlib.util

        if importlib.util.find_spec("jupyter_server_proxy") is not None:
            return base.rstrip("/") + "/proxy/"
    return None


def check_reachable(remote: str, timeout: float = 5.0) -> None:
    """Fail in seconds, with the fix, when nothing listens at a Spark Connect URL: the client itself
    retries with back-off for minutes before it gives up."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(remote.replace("sc://", "http://", 1))
    host, port = url.hostname or "localhost", url.port or 15002
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise SparkStartError(
            f"Nothing answers at the Spark Connect server {remote} ({host}:{port}: {error.strerror or error}).\n"
            "Fix: start the server (sbin/start-connect-server.sh), or correct --remote in the kernelspec."
        ) from None


def diagnose(log_tail: str) -> str:
    """The cause and fix for a JVM that exited at start, from the last lines it wrote."""
    for needle, advice in DIAGNOSES:
        if needle in log_tail:
            return advice
    return "see the JVM's last lines below. Fix: run pyspark-kernel check NAME to test this kernelspec's Spark and Java."


def read_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def precheck(environ: dict[str, str] | None = None) -> None:
    """Fail early, with environment.py's messages, on the faults a JVM launch would hide."""
    environ = dict(os.environ if environ is None else environ)
    spark_home = environment.find_spark_home(None, environ)
    spark_version, _ = environment.spark_version_of(spark_home)
    java = environment.find_java(environ)
    problem = environment.java_problem(spark_version, java)
    if problem:
        raise environment.SparkEnvironmentError(problem)
    import pyspark

    if environment.spark_release(pyspark.__version__) != environment.spark_release(spark_version):
        raise environment.SparkEnvironmentError(
            f"This kernel imported pyspark {pyspark.__version__} from {Path(pyspark.__file__).parent}, "
            f"but SPARK_HOME {spark_home} holds Spark {spark_version}.\n"
            f"Fix: reinstall the kernelspec so PYTHONPATH has that Spark's pyspark: "
            f"pyspark-kernel install --spark-home {spark_home} --replace"
        )


class SessionState(str, Enum):
    """Where this kernel's session is; derived from pyspark's state and the JVM, never assigned."""

    NOT_STARTED = "not started"
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"  # by spark.stop() in user code or %spark stop
    JVM_GONE = "JVM gone"  # killed or crashed under a session


class ManagedSession:
    """The SparkSession this kernel process shares with its user code, and the JVM under it.

    The kernel starts a session in the background; user code may stop it and build another, or build
    the first one itself (``--start lazy``/``none``). Whichever session pyspark holds as current is this
    kernel's: shared.py makes pyspark's entry points wait for a start in flight and send every JVM
    launch through :meth:`launch_gateway`. Safe to call from any thread.
    """

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.remote = settings.remote
        self.conf_overrides: dict[str, str] = {}  # from %spark conf: merged over everything else
        self.notice: Callable[[str], None] = lambda text: warnings.warn(text, stacklevel=3)
        self._lock = threading.Lock()
        self._settled = threading.Event()  # set while no start is in flight
        self._settled.set()
        self._start_thread: threading.Thread | None = None
        self._hooks_ready = threading.Event()
        self._gateway: Any = None  # the JVM launched in this process, whoever asked for it
        self._error: BaseException | None = None
        self._had_session = False
        self._stopped = False
        self._group: str | None = None
        self._group_owner: Any = None  # the SparkContext (or Connect session) the group was set on
        self._group_jvm_thread: Any = None  # the JVM thread that runs the main thread's calls
        self._interrupted_tags: list[str] = []  # Connect tags of interrupted cells, still on the main thread
        self.started_at: float | None = None
        self.start_seconds: float | None = None

    # -- what is there now (no JVM call) --------------------------------------------------------
    @property
    def session(self) -> Any:
        """The live session user code and the kernel share, or None."""
        live = shared.live_session(self.remote)
        if live is not None:
            self._had_session = True
        return live

    @property
    def state(self) -> SessionState:
        if not self._settled.is_set():
            return SessionState.STARTING
        if self._gateway is not None and not self.jvm_alive():
            return SessionState.JVM_GONE
        if self.session is not None:
            return SessionState.READY
        if self._error is not None:
            return SessionState.FAILED
        if self._had_session or self._stopped:
            return SessionState.STOPPED
        return SessionState.NOT_STARTED

    @property
    def ready(self) -> bool:
        """True while a session is up and no start is in flight."""
        return self._settled.is_set() and self.session is not None

    # -- lifecycle ---------------------------------------------------------------------------
    def prepare(self) -> None:
        """Import pyspark and install the hooks in the background, off the kernel's start-up path."""
        threading.Thread(target=self._prepare, name="pyspark-kernel-hooks", daemon=True).start()

    def _prepare(self) -> None:
        try:
            self.install_hooks()
        except Exception as error:  # pyspark cannot be imported: cells run, Spark calls say why
            logger.warning("pyspark-kernel could not hook pyspark: %s", error)

    def install_hooks(self) -> None:
        """Before any user code can reach pyspark, its entry points must know this session (shared.py).
        Ends the wait of :meth:`wait_for_hooks` whether or not it succeeds."""
        try:
            shared.install(self)
        finally:
            self._hooks_ready.set()

    def wait_for_hooks(self, timeout: float = 60.0) -> None:
        """Called before each cell: returns at once once the hooks are in (or could not be)."""
        self._hooks_ready.wait(timeout)

    def start(self) -> None:
        """Begin creating the session in a background thread; returns at once. Does nothing while a
        session is up or a start is in flight."""
        with self._lock:
            if not self._settled.is_set() or self.session is not None:
                return
            self._error = None
            self._stopped = False
            self.started_at = time.monotonic()
            self._settled.clear()
            self._start_thread = threading.Thread(target=self._run, name="pyspark-kernel-start", daemon=True)
            self._start_thread.start()

    def wait_for_start(self) -> None:
        """Block until a start in flight has ended (any thread but the start thread itself)."""
        if not self.is_start_thread():
            self._settled.wait()

    def is_start_thread(self) -> bool:
        return threading.current_thread() is self._start_thread

    def get(self, timeout: float | None = None) -> Any:
        """The shared session, waiting for a start in flight; starts one when none was ever made."""
        if self.state is SessionState.NOT_STARTED:
            self.start()
        if not self._settled.wait(timeout):
            raise TimeoutError(f"Spark did not start within {timeout} s")
        session = self.session
        if session is not None:
            return session
        if self._error is not None:
            raise SparkStartError(str(self._error)) from None
        raise SparkStartError(
            "The SparkSession was stopped (spark.stop() or %spark stop). Build a new one with "
            "SparkSession.builder.getOrCreate() (the kernel adopts it), or run %spark restart."
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the session and make sure its JVM exits (stdin closed, then terminate, then kill).

        A start still in flight after a moment is stuck in the JVM (a driver waiting for a debugger, a
        YARN queue, --packages resolving): the JVMs this process launched are ended, so the start fails
        at once and leaves nothing behind. The moment is short: Jupyter sends SIGTERM 2.5 s after its
        shutdown request, and a JVM that never started its gateway would outlive the kernel.
        """
        if not self._settled.wait(STOP_WAITS_FOR_START_SECONDS):
            end_child_jvms()
            self._settled.wait(60)
        session = self.session
        gateway = self._gateway or self._unrecorded_gateway()
        with self._lock:
            self._gateway = None
            self._group = self._group_owner = self._group_jvm_thread = None
            self._stopped = True
        try:
            if session is not None:
                try:
                    session.stop()
                except Exception:  # a dead JVM cannot stop cleanly; the process is reaped below
                    pass
        finally:  # also when an interrupt lands in session.stop(): the JVM is no one's once forgotten here
            if gateway is not None:
                stop_gateway(gateway, timeout)

    def restart(self, conf: dict[str, str] | None = None) -> Any:
        """Stop, merge ``conf`` over the earlier overrides (never replace them), start, and wait."""
        self.stop()
        self.conf_overrides.update(conf or {})
        self.start()
        return self.get()

    # -- every JVM of this process -------------------------------------------------------------
    def launch_gateway(self, conf: Any = None) -> Any:
        """Launch the JVM for whoever asks (the kernel's start, a user's builder, %spark restart).

        Its output goes to the kernel's log, never into a cell; the kernelspec's spark-submit
        arguments get the notebook defaults and %spark conf; a JVM that exits at start is diagnosed.
        """
        try:
            precheck()
        except environment.SparkEnvironmentError as error:
            raise SparkStartError(f"Spark cannot start: {error}") from None
        from pyspark.java_gateway import launch_gateway

        log_path = self.settings.log_path
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 (the JVM keeps it)
        try:
            with patched_environ(PYSPARK_SUBMIT_ARGS=self.settings.launch_submit_args(self.conf_overrides)):
                gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": subprocess.STDOUT})
        except Exception as error:
            tail = read_tail(log_path)
            raise SparkStartError(f"The Spark JVM exited while starting: {diagnose(tail)}\n{tail}".rstrip()) from error
        finally:
            if log_path:
                log.close()  # type: ignore[union-attr]
        self._gateway = gateway
        return gateway

    def _unrecorded_gateway(self) -> Any:
        module = sys.modules.get("pyspark.core.context") or sys.modules.get("pyspark.context")
        return getattr(module.SparkContext, "_gateway", None) if module else None

    # -- the running cell's jobs ---------------------------------------------------------------
    def cell_group(self) -> str | None:
        """The job group (classic) or tag (Connect) the calling thread's jobs run in, set on first use.

        One group serves every cell until an interrupt cancels it with its future jobs, or the session
        changes; the next cell then gets a new one. So a cell costs no JVM call, and a cancel hits only
        the interrupted cell.
        """
        session = self.session if self._settled.is_set() else None
        if session is None:
            return None
        owner = session if self.remote else session.sparkContext
        if self._group is None or self._group_owner is not owner:
            group = f"pyspark-kernel-{uuid.uuid4().hex[:12]}"
            if self.remote:
                while self._interrupted_tags:  # Connect's tags are per thread: only this thread can drop them
                    session.removeTag(self._interrupted_tags.pop())
                session.addTag(group)
                jvm_thread = None
            else:
                owner.setJobGroup(group, "notebook cell", interruptOnCancel=True)
                jvm_thread = owner._jvm.java.lang.Thread.currentThread()
            self._group, self._group_owner, self._group_jvm_thread = group, owner, jvm_thread
        return self._group

    def cancel_cell_jobs(self, in_jvm_call: bool = False) -> threading.Thread | None:
        """Cancel the running cell's jobs, and any it submits later, from a thread of their own.

        Called from a SIGINT handler, so it must not block: py4j may be mid-call on the main thread.
        Spark's "cancel with future jobs" rejects the group's later result jobs, but not the map-stage
        jobs that adaptive query execution submits first (DAGScheduler.handleMapStageSubmitted has no
        such check), and an interrupt during planning comes before any job exists. So the group is
        cancelled again as jobs appear: for a few seconds after any interrupt, and, when it landed
        inside a py4j call (``in_jvm_call``: py4j drops the connection, the JVM thread goes on with the
        call), for as long as that JVM thread still runs it. Jobs of other threads run on.
        """
        group, owner, jvm_thread = self._group, self._group_owner, self._group_jvm_thread
        if group is None or owner is None:
            return None
        self._group = None  # the next cell gets a fresh group

        def cancel() -> None:
            if self.remote:
                self._interrupted_tags.append(group)  # removed by the next cell, on the thread that added it
                try:
                    owner.interruptTag(group)
                except Exception:
                    pass  # a server that is gone has nothing left to cancel
                return
            self._cancel_as_jobs_appear(owner, group, jvm_thread if in_jvm_call else None)

        thread = threading.Thread(target=cancel, name="pyspark-kernel-cancel", daemon=True)
        thread.start()
        return thread

    def _cancel_as_jobs_appear(self, context: Any, group: str, jvm_thread: Any) -> None:
        """Cancel ``group`` with its future jobs, then again every CANCEL_POLL_SECONDS: for
        CANCEL_MIN_SECONDS, and on while ``jvm_thread`` (the JVM thread of an interrupted call) is
        alive, up to CANCEL_WATCH_SECONDS in all.

        A failed call is tried again at the next poll, never the end of the watch: the interrupt makes
        py4j close the connections it pools, this thread's among them, at this very moment.
        """
        started = time.monotonic()
        first = True
        while True:
            try:
                scala_context = context._jsc.sc()
                if first:
                    try:
                        scala_context.cancelJobGroupAndFutureJobs(group)  # Spark 4: also jobs not yet submitted
                    except Exception:
                        scala_context.cancelJobGroup(group)  # Spark 3.x
                    first = False
                else:
                    scala_context.cancelJobGroup(group)
                call_running = jvm_thread is not None and jvm_thread.isAlive()
            except Exception as error:
                if not self.jvm_alive():
                    return  # a JVM that is gone has no jobs left to cancel
                logger.debug("cancelling job group %s: %s", group, error)
                call_running = jvm_thread is not None
            elapsed = time.monotonic() - started
            if elapsed >= CANCEL_WATCH_SECONDS or (elapsed >= CANCEL_MIN_SECONDS and not call_running):
                return
            time.sleep(CANCEL_POLL_SECONDS)

    def jvm_alive(self, grace: float = 0.0) -> bool:
        """False once the JVM this session runs on has exited (killed, crashed, out of memory).

        ``grace``: how long to give a dying JVM to be reaped, for a caller that has just seen its
        connection refused (the launcher script around the JVM exits a moment after it).
        """
        process = getattr(self._gateway, "proc", None)
        if process is None:
            return True
        try:
            process.wait(grace) if grace else process.poll()
        except subprocess.TimeoutExpired:
            return True
        return process.poll() is None

    # -- the background start ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.install_hooks()
            if self.remote:
                self._create_connect()
            else:
                self._create_classic()
        except BaseException as error:  # the kernel must stay up: keep the reason for whoever asks
            self._error = error if isinstance(error, (SparkStartError, environment.SparkEnvironmentError)) else SparkStartError(
                f"Spark could not start: {type(error).__name__}: {error}"
            )
        finally:
            if self.started_at is not None:
                self.start_seconds = time.monotonic() - self.started_at
            self._settled.set()

    def _create_connect(self) -> Any:
        check_reachable(self.remote or "")
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.remote(self.remote).appName(self.settings.app_name)
        for key, value in self.conf_overrides.items():
            builder = builder.config(key, value)
        try:
            return builder.getOrCreate()
        except Exception as error:
            raise SparkStartError(
                f"Could not connect to the Spark Connect server at {self.remote}: {error}\n"
                "Fix: start the server (sbin/start-connect-server.sh) or correct --remote in the kernelspec."
            ) from error

    def _create_classic(self) -> Any:
        """The same builder call a notebook makes: if user code made a session first, this joins it."""
        from pyspark.sql import SparkSession

        launched_before = self._gateway
        try:
            spark = SparkSession.builder.getOrCreate()
        except SparkStartError:
            raise
        except Exception as error:
            tail = read_tail(self.settings.log_path)
            raise SparkStartError(f"Spark could not create its SparkContext: {error}\n{tail}".rstrip()) from error
        if self._gateway is not launched_before:  # this start launched the JVM: its log level is ours to set
            user_level = self.settings.user_conf().get("spark.log.level") or self.conf_overrides.get("spark.log.level")
            spark.sparkContext.setLogLevel(user_level or DEFAULT_LOG_LEVEL)
        return spark


@contextlib.contextmanager
def patched_environ(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block (launch_gateway reads os.environ)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stop_gateway(gateway: Any, timeout: float = 10.0) -> None:
    """Close py4j and end the JVM: it exits when its stdin closes; terminate, then kill, if it lingers."""
    try:
        try:
            gateway.shutdown()
        except Exception:
            pass
        process = getattr(gateway, "proc", None)
        if process is None:
            return
        try:
            process.stdin.close()
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        except KeyboardInterrupt:  # no time to wait for a clean exit: end it now, then let the interrupt through
            process.kill()
            raise
        except Exception:
            pass
    finally:
        forget_spark_state()


def end_child_jvms(grace: float = 0.5) -> None:
    """End the java processes this process started (the JVMs of its starts): terminate, then kill.

    Never reaps them: the Popen that started one must see its real exit, and after someone else's
    waitpid it reads 0, which pyspark's launch_gateway takes for "still starting" and waits forever.
    """
    import psutil

    def running(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    jvms = [child for child in psutil.Process().children(recursive=True) if "java" in child.name()]
    for jvm in jvms:
        jvm.terminate()
    deadline = time.monotonic() + grace
    while any(running(jvm) for jvm in jvms) and time.monotonic() < deadline:
        time.sleep(0.05)
    for jvm in jvms:
        if running(jvm):
            jvm.kill()


def forget_spark_state() -> None:
    """Clear pyspark's class-level session state, which a stop against a dead JVM leaves behind
    ("Cannot run multiple SparkContexts at once"), so that the next start begins clean."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    with SparkContext._lock:
        SparkContext._active_spark_context = None
        SparkContext._gateway = None
        SparkContext._jvm = None
    SparkSession._instantiatedSession = None
    SparkSession._activeSession = None


def ui_link(settings: SessionSettings, ui_url: str | None) -> str | None:
    """The Spark UI as the user's browser reaches it: through the proxy when there is one."""
    if not ui_url or not settings.ui_proxy:
        return ui_url
    return f"{settings.ui_proxy}{ui_url.rsplit(':', 1)[-1].strip('/')}/jobs/"


def describe(spark: Any) -> dict[str, str | None]:
    """The facts the first-cell line and %spark show: version, master, app id, UI URL."""
    try:
        context = spark.sparkContext
    except Exception:  # Spark Connect has no SparkContext
        return {"version": spark.version, "master": os.environ.get("SPARK_REMOTE"), "app_id": getattr(spark, "session_id", None), "ui": None}
    return {"version": spark.version, "master": context.master, "app_id": context.applicationId, "ui": context.uiWebUrl}
