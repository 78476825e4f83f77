"""Build and own the kernel's SparkSession: start it in the background, wait for it, stop, restart.

Fourth step of the data path: the kernel process's environment (SPARK_HOME, PYSPARK_SUBMIT_ARGS or
SPARK_REMOTE, PYSPARK_KERNEL_START) -> a SparkSession. It knows nothing of Jupyter, so it can be tested
and benchmarked on its own.

The JVM is launched with pyspark's own ``launch_gateway`` but with its output sent to a log file: a
JVM started in the background would otherwise write its start-up chatter into whichever notebook cell
happens to be running, and a failed start would leave only "Java gateway process exited". With the log
the error names the cause (no Java, a heap the machine cannot give, a broken SPARK_HOME) and the fix.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from . import environment

# Notebook defaults, each applied unless the kernelspec's --conf sets it.
NOTEBOOK_DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",  # the console bar would land in cells as stderr noise
    "spark.sql.repl.eagerEval.enabled": "true",  # DataFrames render as tables in notebooks
    "spark.sql.repl.eagerEval.maxNumRows": "20",
}
DEFAULT_LOG_LEVEL = "WARN"
LOG_TAIL_LINES = 12

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


def free_port(start: int, taken: set[int] | frozenset[int] = frozenset(), tries: int = 500) -> int:
    """The first port from ``start`` that nothing on this machine listens on and is not in ``taken``."""
    import socket

    for port in range(start, start + tries):
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise SparkStartError(f"No free port for the Spark UI in {start}-{start + tries - 1}.\nFix: set --conf spark.ui.port=PORT in the kernelspec.")


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

    if pyspark.__version__ != spark_version:
        raise environment.SparkEnvironmentError(
            f"This kernel imported pyspark {pyspark.__version__} from {Path(pyspark.__file__).parent}, "
            f"but SPARK_HOME {spark_home} holds Spark {spark_version}.\n"
            f"Fix: reinstall the kernelspec so PYTHONPATH has that Spark's pyspark: "
            f"pyspark-kernel install --spark-home {spark_home} --replace"
        )


class ManagedSession:
    """One kernel's SparkSession and the JVM under it; safe to call from any thread."""

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.conf_overrides: dict[str, str] = {}  # from %spark conf: merged over everything else
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: Any = None
        self._gateway: Any = None
        self._error: BaseException | None = None
        self._group: str | None = None
        self.state = "not started"
        self.started_at: float | None = None
        self.start_seconds: float | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Begin creating the session in a background thread; returns at once. Idempotent."""
        with self._lock:
            if self._thread is not None:
                return
            self.state = "starting"
            self.started_at = time.monotonic()
            self._ready.clear()
            self._thread = threading.Thread(target=self._run, name="pyspark-kernel-start", daemon=True)
            self._thread.start()

    def get(self, timeout: float | None = None) -> Any:
        """The SparkSession, waiting for it; starts it first when the mode is lazy."""
        if self.state == "stopped":
            raise SparkStartError("Spark was stopped in this kernel. Run %spark restart to start a new session.")
        self.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"Spark did not start within {timeout} s")
        if self._error is not None:
            raise SparkStartError(str(self._error)) from None
        return self._session

    @property
    def ready(self) -> bool:
        """True once a session exists (not merely once the attempt ended)."""
        return self._ready.is_set() and self._error is None and self._session is not None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the session and make sure its JVM exits (stdin closed, then terminate, then kill)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=120)  # a start in flight must finish before it can be undone
        with self._lock:
            session, gateway = self._session, self._gateway
            self._session = self._gateway = None
            self._thread = None
            self._group = None
            self.state = "stopped"
        if session is not None:
            try:
                session.stop()
            except Exception:  # a dead JVM cannot stop cleanly; the process is reaped below
                pass
        if gateway is not None:
            stop_gateway(gateway, timeout)

    def restart(self, conf: dict[str, str] | None = None) -> Any:
        """Stop, merge ``conf`` over the earlier overrides (never replace them), start, and wait."""
        self.stop()
        self.conf_overrides.update(conf or {})
        self._error = None
        self.state = "not started"
        return self.get()

    # -- the running cell's jobs ---------------------------------------------------------------
    def cell_group(self) -> str | None:
        """The job group (classic) or tag (Connect) the calling thread's jobs run in, set on first use.

        One group serves every cell until an interrupt cancels it with its future jobs; the next cell
        then gets a new one. So a cell costs no JVM call, and a cancel hits only the interrupted cell.
        """
        if not self.ready:
            return None
        if self._group is None:
            self._group = f"pyspark-kernel-{uuid.uuid4().hex[:12]}"
            if self.settings.remote:
                self._session.addTag(self._group)
            else:
                self._session.sparkContext.setJobGroup(self._group, "notebook cell", interruptOnCancel=True)
        return self._group

    def cancel_cell_jobs(self) -> threading.Thread | None:
        """Cancel the running cell's jobs, and any it submits later, from a thread of their own.

        Called from a SIGINT handler, so it must not block: py4j may be mid-call on the main thread.
        Jobs of other threads are in no group and run on.
        """
        group, session = self._group, self._session
        if group is None or session is None:
            return None
        self._group = None  # the next cell gets a fresh group

        def cancel() -> None:
            try:
                if self.settings.remote:
                    session.interruptTag(group)
                    session.removeTag(group)
                else:
                    scala_context = session.sparkContext._jsc.sc()
                    try:
                        scala_context.cancelJobGroupAndFutureJobs(group)  # Spark 4: also jobs not yet submitted
                    except Exception:
                        scala_context.cancelJobGroup(group)  # Spark 3.x
            except Exception:
                pass  # a JVM that is gone has no jobs left to cancel

        thread = threading.Thread(target=cancel, name="pyspark-kernel-cancel", daemon=True)
        thread.start()
        return thread

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
            self._session = self._create_connect() if self.settings.remote else self._create_classic()
            self.state = "ready"
        except BaseException as error:  # the kernel must stay up: keep the reason for whoever asks
            self._error = error if isinstance(error, (SparkStartError, environment.SparkEnvironmentError)) else SparkStartError(
                f"Spark could not start: {type(error).__name__}: {error}"
            )
            self.state = "failed"
        finally:
            if self.started_at is not None:
                self.start_seconds = time.monotonic() - self.started_at
            self._ready.set()

    def _create_connect(self) -> Any:
        check_reachable(self.settings.remote or "")
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.remote(self.settings.remote).appName(self.settings.app_name)
        for key, value in self.conf_overrides.items():
            builder = builder.config(key, value)
        try:
            return builder.getOrCreate()
        except Exception as error:
            raise SparkStartError(
                f"Could not connect to the Spark Connect server at {self.settings.remote}: {error}\n"
                "Fix: start the server (sbin/start-connect-server.sh) or correct --remote in the kernelspec."
            ) from error

    def _create_classic(self) -> Any:
        try:
            precheck()
        except environment.SparkEnvironmentError as error:
            raise SparkStartError(f"Spark cannot start: {error}") from None
        from pyspark import SparkConf, SparkContext
        from pyspark.java_gateway import launch_gateway
        from pyspark.sql import SparkSession

        log_path = self.settings.log_path
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 (the JVM keeps it)
        # %spark conf overrides go last on spark-submit's command line, so they win and reach the
        # JVM's own start (driver memory, extra Java options, jars).
        from .kernelspec import with_conf

        submit_args = with_conf(self.settings.submit_args, self.conf_overrides)
        try:
            with patched_environ(PYSPARK_SUBMIT_ARGS=submit_args):
                gateway = launch_gateway(popen_kwargs={"stdout": log, "stderr": subprocess.STDOUT})
        except Exception as error:
            tail = read_tail(log_path)
            raise SparkStartError(f"The Spark JVM exited while starting: {diagnose(tail)}\n{tail}".rstrip()) from error
        finally:
            if log_path:
                log.close()  # type: ignore[union-attr]
        self._gateway = gateway
        # SparkConf(_jvm=...) reads the JVM's system properties: spark-defaults.conf and the kernelspec's --conf.
        conf = SparkConf(_jvm=gateway.jvm)
        # The kernelspec's --conf outranks these; they outrank what spark-submit implies for a shell
        # (it turns the console progress bar on and names the app "PySparkShell").
        user_conf = {**self.settings.user_conf(), **self.conf_overrides}
        kernel_conf = {**NOTEBOOK_DEFAULTS, "spark.app.name": self.settings.app_name, **self.settings.defaults}
        for key, value in kernel_conf.items():
            if key not in user_conf:
                conf.set(key, value)
        try:
            context = SparkContext(conf=conf, gateway=gateway)
        except Exception as error:
            tail = read_tail(log_path)
            stop_gateway(gateway)
            self._gateway = None
            raise SparkStartError(f"Spark could not create its SparkContext: {error}\n{tail}".rstrip()) from error
        context.setLogLevel(conf.get("spark.log.level", DEFAULT_LOG_LEVEL))
        return SparkSession.builder.getOrCreate()


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
        gateway.shutdown()
    except Exception:
        pass
    process = getattr(gateway, "proc", None)
    if process is not None:
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
        except Exception:
            pass
    forget_spark_state()


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
