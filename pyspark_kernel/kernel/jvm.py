"""Launch and end the JVMs of this kernel process, with their output in the kernel's log.

Every JVM of the process is launched with the command pyspark's own ``launch_gateway`` runs, but with its
output sent to a log file and its variables (the gateway's secret among them) in its own environment
only (prelaunch.spawn), and connected to as launch_gateway connects. A JVM started in the background
would otherwise write its start-up chatter into whichever notebook cell happens to be running, and a
failed start would leave only "Java gateway process exited". With the log the error names the cause
(no Java, a heap the machine cannot give, a broken SPARK_HOME) and the fix. Ending a JVM makes sure it exits and that pyspark forgets it, so the next start is clean.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pyspark_kernel import environment, localdirs, processes
from pyspark_kernel.errors import Problem, SparkEnvironmentError, SparkStartError
from pyspark_kernel.kernel import launchdirs, prelaunch, uiprotect
from pyspark_kernel.kernel.settings import SessionSettings

LOG_TAIL_LINES = 12
DIAGNOSE_LINES = 80  # a JVM that died in SparkContext's constructor wrote its cause above a long stack trace

# Known lines in a failed JVM's output -> (what went wrong, the fix).
DIAGNOSES = (
    # SparkUI.bind calls System.exit(1) when spark.ui.port and the spark.port.maxRetries ports after it are all taken.
    (
        "Service 'SparkUI' failed after",
        "every port Spark tried for its UI was taken",
        "set a free --conf spark.ui.port=PORT, or a larger --conf spark.port.maxRetries, in the kernelspec (install ... --replace).",
    ),
    (
        "Could not reserve enough space",
        "the JVM could not get the heap it was asked for",
        "lower --driver-memory (or spark.driver.memory) to fit this machine's memory.",
    ),
    ("Invalid maximum heap size", "the driver memory setting is not a valid size", "use a size like 2g for --driver-memory."),
    ("Cannot allocate memory", "the machine has not enough free memory for the JVM", "lower --driver-memory or free memory."),
    ("UnsupportedClassVersionError", "this Java is too old for this Spark", "install Java 17 or 21 and set JAVA_HOME to it."),
    ("JAVA_HOME is not set", "Spark found no Java", "install Java 17 or 21 (apt-get install default-jre-headless) or set JAVA_HOME."),
    (
        "Failed to find Spark jars directory",
        "SPARK_HOME has no jars",
        "point the kernelspec at a complete Spark (pyspark-kernel install --spark-home PATH --replace).",
    ),
    (
        "Invalid properties file",
        "this account cannot read the kernelspec's secret settings file (secrets are kept per user, 0600)",
        "install a kernelspec of your own with pyspark-kernel install --user … --conf KEY=VALUE.",
    ),
    ("No such file or directory", "a file Spark needs is missing", "check SPARK_HOME and JAVA_HOME in the kernelspec (pyspark-kernel check NAME)."),
)
# What pyspark's launch_gateway imports into a new gateway's JVM view; the SQL classes moved between
# Spark 3.x (found through sql.*) and 4.x (sql.classic holds the SparkSession).
CORE_JAVA_IMPORTS = (
    "org.apache.spark.SparkConf",
    "org.apache.spark.api.java.*",
    "org.apache.spark.api.python.*",
    "org.apache.spark.ml.python.*",
    "org.apache.spark.mllib.api.python.*",
    "org.apache.spark.resource.*",
)
PYSPARK_JAVA_IMPORTS = (
    *CORE_JAVA_IMPORTS,
    "org.apache.spark.sql.Encoders",
    "org.apache.spark.sql.OnSuccessCall",
    "org.apache.spark.sql.functions",
    "org.apache.spark.sql.classic.*",
    "org.apache.spark.sql.api.python.*",
    "org.apache.spark.sql.hive.*",
    "scala.Tuple2",
)
PYSPARK_3_JAVA_IMPORTS = (*CORE_JAVA_IMPORTS, "org.apache.spark.sql.*", "org.apache.spark.sql.api.python.*", "org.apache.spark.sql.hive.*", "scala.Tuple2")

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

    The kernel's first start gets the JVM prelaunch.py began in PySparkKernel.__init__, if it is
    what this launch would start; any other launch runs spark-submit through the same door
    (prelaunch.spawn). Either way the gateway is then built from the port and secret the JVM wrote to
    its file: no variable of the process changes (pyspark's launch_gateway reads both from os.environ,
    where a subprocess a cell starts meanwhile would inherit the secret)."""
    early = prelaunch.take(settings, overrides, conf)
    try:
        if settings.problem is not None:  # a kernelspec the kernel could not read (settings.py)
            raise settings.problem
        precheck()
    except Problem as error:
        if early is not None:
            prelaunch.end(early, release=False)
        raise SparkStartError(f"Spark cannot start: {error.problem}", error.fix) from None
    except BaseException:
        if early is not None:
            prelaunch.end(early, release=False)
        raise
    log_path = settings.log_path
    launched = early
    try:
        if launched is None:
            launched = prelaunch.spawn(settings, overrides, conf, temp_folder(settings, overrides, conf))
        port, secret = prelaunch.gateway_address(launched)
        gateway = connect_gateway(port, secret, launched.process)
        # Before any SparkConf of this JVM: the UI's key as a system property, never on a command line.
        uiprotect.protect_ui(gateway.jvm, settings.submit_args)
        if launched.folder:
            launchdirs.record_jvm(launched.folder, launched.process.pid)
            gateway.pyspark_kernel_temp = launched.folder  # removed by stop_gateway once the JVM has exited
        return gateway
    except Exception as error:
        if launched is not None:
            prelaunch.end(launched, release=False)
        tail = read_tail(log_path)
        cause, fix = diagnose(tail)
        raise SparkStartError(f"The Spark JVM exited while starting: {cause}.\n{tail}".rstrip(), fix) from error


def connect_gateway(port: int, secret: str, process: subprocess.Popen[bytes]) -> Any:
    """A py4j gateway to the JVM ``process`` runs, built as pyspark's launch_gateway builds it for a JVM
    that runs already (PYSPARK_GATEWAY_PORT/_SECRET), with the port and secret passed in instead."""
    from py4j.clientserver import ClientServer, JavaParameters, PythonParameters
    from py4j.java_gateway import GatewayParameters, JavaGateway, java_import

    if os.environ.get("PYSPARK_PIN_THREAD", "true").lower() == "true":
        gateway = ClientServer(
            java_parameters=JavaParameters(port=port, auth_token=secret, auto_convert=True),
            python_parameters=PythonParameters(port=0, eager_load=False),
        )
    else:
        gateway = JavaGateway(gateway_parameters=GatewayParameters(port=port, auth_token=secret, auto_convert=True))
    gateway.proc = process
    for name in java_imports():
        java_import(gateway.jvm, name)
    return gateway


def java_imports() -> tuple[str, ...]:
    """The classes pyspark's own launch_gateway imports into the gateway, for the pyspark this kernel
    runs: 4.x names its SparkSession in sql.classic, 3.x in sql (a 3.5 kernelspec runs 3.5's pyspark)."""
    import pyspark

    return PYSPARK_3_JAVA_IMPORTS if pyspark.__version__.startswith("3.") else PYSPARK_JAVA_IMPORTS


def temp_folder(settings: SessionSettings, overrides: dict[str, str], conf: Any) -> Path | None:
    """This launch's own temp folder (localdirs.py), or None when the user chose Spark's local dirs
    (kernelspec, %spark conf, the builder's conf or SPARK_LOCAL_DIRS)."""
    chosen = {**settings.user_conf(), **overrides}
    if conf is not None and conf.get("spark.local.dir") is not None:
        chosen["spark.local.dir"] = conf.get("spark.local.dir")
    return launchdirs.launch_folder(chosen)


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


def from_jvm_connection(error: BaseException, traceback: Any) -> bool:
    """Whether ``error`` came from this process's connection to its JVM: py4j's network error, or a
    ConnectionError raised inside py4j or pyspark (a py4j call, a collect's socket to the JVM). Only
    such an error may mean a dying JVM, worth a moment's wait for it to be reaped before the cell
    shows it; a user's own socket or HTTP client raises from elsewhere and is shown at once."""
    from py4j.protocol import Py4JNetworkError

    if isinstance(error, Py4JNetworkError):
        return True
    if not isinstance(error, ConnectionError):
        return False
    folders = tuple(str(Path(module.__file__).parent) + os.sep for name in ("py4j", "pyspark") if (module := sys.modules.get(name)) and module.__file__)
    while traceback is not None:
        if folders and traceback.tb_frame.f_code.co_filename.startswith(folders):
            return True
        traceback = traceback.tb_next
    return False


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
            processes.end_popen(process, timeout)
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
    """End the JVMs this process's launches started (prelaunch.spawn records each): the spark-submit
    process, which becomes the driver JVM, and what runs under it (while it is a script, the launcher
    JVM that builds its command). Terminate, then kill. A java process the user started from a cell
    is not under a launch, so it runs on; a process that exits during the scan is skipped.

    Never reaps them: the Popen that started one must see its real exit, and after someone else's
    waitpid it reads 0, which a wait for the JVM's gateway takes for "still starting".
    """
    processes.end_processes([process for launch in prelaunch.running_launches() for process in launch_tree(launch.pid)], grace)


def launch_tree(pid: int) -> list[Any]:
    """The process ``pid`` and everything under it, as psutil.Process objects; [] once it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [*root.children(recursive=True), root]
    except psutil.Error:
        return []


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
