"""Launch and end the JVMs of this kernel process, with their output in the kernel's log.

Every JVM of the process is launched with pyspark's own ``launch_gateway`` but with its output sent to
a log file: a JVM started in the background would otherwise write its start-up chatter into whichever
notebook cell happens to be running, and a failed start would leave only "Java gateway process exited".
With the log the error names the cause (no Java, a heap the machine cannot give, a broken SPARK_HOME)
and the fix. Ending a JVM makes sure it exits and that pyspark forgets it, so the next start is clean.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from . import environment, localdirs, prelaunch, secrets, uiauth
from .errors import SparkEnvironmentError, SparkStartError
from .settings import SessionSettings

LOG_TAIL_LINES = 12

# Known lines in a failed JVM's output -> (what went wrong, the fix).
DIAGNOSES = (
    ("Could not reserve enough space", "the JVM could not get the heap it was asked for", "lower --driver-memory (or spark.driver.memory) to fit this machine's memory."),
    ("Invalid maximum heap size", "the driver memory setting is not a valid size", "use a size like 2g for --driver-memory."),
    ("Cannot allocate memory", "the machine has not enough free memory for the JVM", "lower --driver-memory or free memory."),
    ("UnsupportedClassVersionError", "this Java is too old for this Spark", "install Java 17 or 21 and set JAVA_HOME to it."),
    ("JAVA_HOME is not set", "Spark found no Java", "install Java 17 or 21 (apt-get install default-jre-headless) or set JAVA_HOME."),
    ("Failed to find Spark jars directory", "SPARK_HOME has no jars", "point the kernelspec at a complete Spark (pyspark-kernel install --spark-home PATH --replace)."),
    ("Invalid properties file", "this account cannot read the kernelspec's secret settings file (secrets are kept per user, 0600)", "install a kernelspec of your own with pyspark-kernel install --user … --conf KEY=VALUE."),
    ("No such file or directory", "a file Spark needs is missing", "check SPARK_HOME and JAVA_HOME in the kernelspec (pyspark-kernel check NAME)."),
)
UNKNOWN_CAUSE = ("see the JVM's last lines below", "run pyspark-kernel check NAME to test this kernelspec's Spark and Java.")


def diagnose(log_tail: str) -> tuple[str, str]:
    """(cause, fix) for a JVM that exited at start, from the last lines it wrote."""
    for needle, cause, fix in DIAGNOSES:
        if needle in log_tail:
            return cause, fix
    return UNKNOWN_CAUSE


def read_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def precheck(environ: dict[str, str] | None = None) -> None:
    """Fail early, with environment.py's messages, on the faults a JVM launch would hide."""
    environ = dict(os.environ if environ is None else environ)
    spark_home = environment.find_spark_home(None, environ)
    spark_version, _ = environment.spark_version_of(spark_home)
    environment.require_java(spark_version, environment.find_java(environ))
    import pyspark

    if environment.spark_release(pyspark.__version__) != environment.spark_release(spark_version):
        raise SparkEnvironmentError(
            f"This kernel imported pyspark {pyspark.__version__} from {Path(pyspark.__file__).parent}, "
            f"but SPARK_HOME {spark_home} holds Spark {spark_version}.",
            f"reinstall the kernelspec so PYTHONPATH has that Spark's pyspark: pyspark-kernel install --spark-home {spark_home} --replace",
        )


def launch(settings: SessionSettings, overrides: dict[str, str], conf: Any = None) -> Any:
    """A py4j gateway to a new JVM: the kernelspec's spark-submit arguments with the notebook defaults
    and ``overrides`` (%spark conf), its output in the kernel's log, a start failure diagnosed.

    The kernel's first start gets the JVM prelaunch.py began before ipykernel was imported, if it is
    what this launch would start; pyspark's launch_gateway then connects to it instead of launching."""
    early = prelaunch.take(settings, overrides, conf)
    try:
        precheck()
    except SparkEnvironmentError as error:
        if early is not None:
            prelaunch.end(early, release=False)
        raise SparkStartError(f"Spark cannot start: {error.problem}", error.fix) from None
    from pyspark.java_gateway import launch_gateway

    log_path = settings.log_path
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 (the JVM keeps it)
    folder = early.folder if early is not None else temp_folder(settings, overrides, conf)
    try:
        if early is not None:
            port, secret = prelaunch.gateway_address(early)
            with patched_environ(PYSPARK_GATEWAY_PORT=str(port), PYSPARK_GATEWAY_SECRET=secret):
                gateway = launch_gateway(conf)
            gateway.proc = early.process  # launch_gateway leaves None for a JVM it did not start
        else:
            launch_conf, conf_secrets = without_secrets(conf)  # a builder's secrets go where %spark conf's go
            with patched_environ(**settings.launch_environ({**overrides, **conf_secrets}, folder)):
                gateway = launch_gateway(launch_conf, popen_kwargs={"stdout": log, "stderr": subprocess.STDOUT})
        # Before any SparkConf of this JVM: the UI's key as a system property, never on a command line.
        uiauth.protect_ui(gateway.jvm, settings.submit_args, {**settings.defaults, **settings.user_conf(), **overrides}.get("spark.ui.port"))
        if folder and getattr(gateway, "proc", None) is not None:
            localdirs.record_jvm(folder, gateway.proc.pid)
            gateway.pyspark_kernel_temp = folder  # removed by stop_gateway once the JVM has exited
        return gateway
    except Exception as error:
        if early is not None:
            prelaunch.end(early, release=False)
        tail = read_tail(log_path)
        cause, fix = diagnose(tail)
        raise SparkStartError(f"The Spark JVM exited while starting: {cause}.\n{tail}".rstrip(), fix) from error
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]


def without_secrets(conf: Any) -> tuple[Any, dict[str, str]]:
    """A builder's SparkConf as pyspark puts it on spark-submit's command line, less its secret settings
    (secrets.py), which this launch's 0600 properties file carries instead. The SparkContext still sets
    them all in the JVM afterwards, in-process."""
    if conf is None:
        return None, {}
    plain, hidden = secrets.split(dict(conf.getAll()))
    if not hidden:
        return conf, {}
    from pyspark import SparkConf

    return SparkConf(loadDefaults=False).setAll(list(plain.items())), hidden


def temp_folder(settings: SessionSettings, overrides: dict[str, str], conf: Any) -> Path | None:
    """This launch's own temp folder (localdirs.py), or None when the user chose Spark's local dirs
    (kernelspec, %spark conf, the builder's conf or SPARK_LOCAL_DIRS)."""
    chosen = {**settings.user_conf(), **overrides}
    if conf is not None and conf.get("spark.local.dir") is not None:
        chosen["spark.local.dir"] = conf.get("spark.local.dir")
    return localdirs.launch_folder(chosen)


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


def is_alive(gateway: Any, grace: float = 0.0) -> bool:
    """False once ``gateway``'s JVM has exited (killed, crashed, out of memory); True with no process.

    ``grace``: how long to give a dying JVM to be reaped, for a caller that has just seen its
    connection refused (the launcher script around the JVM exits a moment after it).
    """
    process = getattr(gateway, "proc", None)
    if process is None:
        return True
    try:
        process.wait(grace) if grace else process.poll()
    except subprocess.TimeoutExpired:
        return True
    return process.poll() is None


def pyspark_gateway() -> Any:
    """The gateway pyspark holds, read from its class state without importing it."""
    module = sys.modules.get("pyspark.core.context") or sys.modules.get("pyspark.context")
    return getattr(module.SparkContext, "_gateway", None) if module else None


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
        folder, process = getattr(gateway, "pyspark_kernel_temp", None), getattr(gateway, "proc", None)
        if folder is not None and process is not None and process.poll() is not None:
            localdirs.remove(folder)  # a killed JVM's blocks go now; a stopped one's hooks emptied it


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
