"""Begin the kernel's JVM before its session's start: that launch is most of what a first cell waits for.

The session's start thread first imports pyspark and installs its hooks, and spark-submit, its launcher
JVM and the driver JVM need none of that. So ``begin`` (called by PySparkKernel.__init__ once ipykernel's
shell is built: begun before ipykernel's import, the JVM's start took the CPU that import needs, bench
row 1) runs the command pyspark's
``launch_gateway`` would run for the kernel's own start: the same PYSPARK_SUBMIT_ARGS, temp folder,
log, stdin pipe and SIGINT mask, from the same SessionSettings, which the kernel then takes over
(``settings_for``). jvm.launch then connects to it as ``launch_gateway`` connects to a JVM that already
runs, with the port and secret the JVM wrote to its file passed in (never through os.environ).

Only the kernel's first start can use it. A launch that needs another command (%spark conf overrides,
a builder's own conf, other settings) ends the early JVM and launches its own; anything unusual here
(no SPARK_HOME, Spark Connect, a lazy start, a relative connection file) skips the early launch, and
``begin`` never raises: a kernelspec it cannot read (a malformed PYSPARK_SUBMIT_ARGS) fails the kernel's
own start instead, which shows why in a cell, where a crash here would leave Jupyter restarting the
kernel in a loop.

Every launch of the process, early or not, runs through ``spawn``: spark-submit with its variables given
to that process alone (pyspark's launch_gateway reads them from, and would need them put in,
os.environ, where any subprocess a cell starts meanwhile inherits them), recorded so that a stop can
end the JVMs this process launched, and no java process the user started from a cell.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark_kernel import localdirs, localserver, processes, secrets
from pyspark_kernel.kernel import launchdirs
from pyspark_kernel.kernel.settings import SessionSettings, log_path_for
from pyspark_kernel.variables import EARLY_JVM, START, switch

POLL_SECONDS = 0.02  # pyspark polls for the gateway's file every 0.1 s; the first cell waits on it


@dataclass
class LaunchedJVM:
    """A spark-submit this process began (early, or for a launch), and what it was launched with."""

    settings: SessionSettings
    process: subprocess.Popen[bytes]
    info_file: Path  # where the JVM writes its gateway port and secret (_PYSPARK_DRIVER_CONN_INFO_PATH)
    folder: Path | None  # its temp folder (localdirs.py)


_early: LaunchedJVM | None = None
_lock = threading.Lock()
_launched: list[subprocess.Popen[bytes]] = []  # every spark-submit of this process not yet seen to exit


def connection_file_argument(argv: list[str]) -> str | None:
    """The connection file a kernel launch names (``-f FILE``, as kernel.json's argv says), or None."""
    for index, argument in enumerate(argv):
        if argument in ("-f", "--f") and index + 1 < len(argv):
            return argv[index + 1]
        for prefix in ("-f=", "--f=", "--IPKernelApp.connection_file="):
            if argument.startswith(prefix):
                return argument[len(prefix) :]
    return None


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether this kernel's start will launch a local JVM as soon as the kernel exists."""
    spark_home = environ.get("SPARK_HOME")
    return (
        switch(environ, EARLY_JVM) is not False  # off: launched from the kernel's start, as before 0.1
        and not environ.get("SPARK_REMOTE")
        and environ.get(START.name, "eager") == "eager"
        and not environ.get("SPARK_TESTING")  # pyspark adds a conf of its own for it
        and spark_home is not None
        and os.access(Path(spark_home) / "bin" / "spark-submit", os.X_OK)
    )


def begin(argv: list[str]) -> None:
    """Launch the kernel's JVM now if this kernel will ask for one at once. Never raises: on any fault
    the kernel's start launches it, as without this module, and meets the fault there, in a cell."""
    try:
        _begin(argv)  # a shared local server's kernel has none (wanted: no SPARK_REMOTE); launch.py began its server
    except Exception as error:
        print(f"pyspark-kernel: the JVM was not launched early: {type(error).__name__}: {error}", file=sys.stderr)


def local_server_wanted(environ: Mapping[str, str]) -> bool:
    """Whether this kernel will join a shared local Spark Connect server at once (localserver.py)."""
    return localserver.is_local_remote(environ.get("SPARK_REMOTE")) and switch(environ, EARLY_JVM) is not False and environ.get(START.name, "eager") == "eager"


def begin_local_server_now() -> None:
    """From the kernel's launch, before ipykernel is imported: start the shared server, in a process of its
    own, if this kernel needs one that does not run; the kernel's own start (backends/connect.py) then
    waits on pyspark's discovery lock until the server is up, and joins it. Unlike a classic kernel's JVM,
    this costs the kernel's start nothing after the first notebook of a server: later ones find it running.
    Never raises."""
    try:
        if not local_server_wanted(os.environ) or localserver.server_identity(localserver.place_from(os.environ)) is not None:
            return
        from pyspark_kernel.kernel.backends.localstarter import run_starter

        run_starter(wait=False)
    except Exception as error:
        print(f"pyspark-kernel: the local Spark Connect server was not started early: {type(error).__name__}: {error}", file=sys.stderr)


def _begin(argv: list[str]) -> None:
    global _early
    connection_file = connection_file_argument(argv)
    if not wanted(os.environ) or connection_file is None or not os.path.isabs(connection_file):
        return
    settings = SessionSettings.from_environ(log_path=log_path_for(connection_file))
    if settings.problem is not None:
        return  # the kernel's start shows it
    try:
        folder = launchdirs.launch_folder(settings.user_conf())
    except Exception:
        release_port(settings)
        raise
    try:
        _early = spawn(settings, {}, None, folder)
    except Exception:
        if folder is not None:
            localdirs.remove(folder)
        release_port(settings)
        raise


def spawn(settings: SessionSettings, overrides: dict[str, str], conf: Any, folder: Path | None) -> LaunchedJVM:
    """Run spark-submit as pyspark's launch_gateway would (its command, stdin pipe, SIGINT ignored, the
    file it writes its gateway's port and secret to), with its variables in its own environment only
    and its output in the kernel's log. Recorded for end_child_jvms (jvm.py)."""
    # A builder's secret settings go where %spark conf's go (secrets.py), never onto the command line;
    # the SparkContext still sets every setting of the builder in the JVM afterwards, in-process.
    plain, hidden = secrets.split(dict(conf.getAll()) if conf is not None else {})
    from_conf = [word for key, value in plain.items() for word in ("--conf", f"{key}={value}")]
    env = {**os.environ, **settings.launch_environ({**overrides, **hidden}, folder), "SPARK_CONNECT_MODE": "0"}
    submit_args = shlex.split(env["PYSPARK_SUBMIT_ARGS"])
    if env.get("SPARK_TESTING"):  # as launch_gateway does
        submit_args = ["--conf", "spark.ui.enabled=false", *submit_args]
    info_dir = Path(tempfile.mkdtemp(prefix="pyspark-kernel-gateway-"))
    env["_PYSPARK_DRIVER_CONN_INFO_PATH"] = str(info_dir / "gateway")
    command = [str(Path(spark_home(env)) / "bin" / "spark-submit"), *from_conf, *submit_args]
    try:
        log = open(settings.log_path, "ab") if settings.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=ignore_sigint)
        finally:
            if settings.log_path:
                log.close()  # type: ignore[union-attr]
    except BaseException:
        shutil.rmtree(info_dir, ignore_errors=True)
        raise
    with _lock:
        _launched[:] = [launched for launched in _launched if launched.poll() is None]
        _launched.append(process)
    return LaunchedJVM(settings, process, info_dir / "gateway", folder)


def spark_home(environ: Mapping[str, str]) -> str:
    """SPARK_HOME as pyspark's launch_gateway finds it (the variable, else pip's pyspark folder)."""
    if environ.get("SPARK_HOME"):
        return environ["SPARK_HOME"]
    from pyspark.find_spark_home import _find_spark_home

    return _find_spark_home()


def running_launches() -> list[subprocess.Popen[bytes]]:
    """The spark-submit processes of this process's launches that have not exited."""
    with _lock:
        _launched[:] = [launched for launched in _launched if launched.poll() is None]
        return list(_launched)


def ignore_sigint() -> None:
    """In the JVM's process, before exec: an interrupt of the kernel must not reach it (as pyspark does)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def settings_for(log_path: Path | None) -> SessionSettings | None:
    """The early JVM's settings, for the kernel to make its session with (they hold its UI port), or
    None if there is no early JVM or it was launched for another log (it is then ended)."""
    early = _early
    if early is None:
        return None
    if early.settings.log_path != log_path:
        discard(release=True)
        return None
    return early.settings


def take(settings: SessionSettings, overrides: dict[str, str], conf: Any) -> LaunchedJVM | None:
    """The early JVM, once, if it is what a launch with ``settings``, ``overrides`` and ``conf`` would
    start; otherwise it is ended and None is returned (the caller launches its own)."""
    global _early
    with _lock:
        early, _early = _early, None
    if early is None:
        return None
    if early.settings is not settings or overrides or (conf is not None and conf.getAll()):
        end(early, release=early.settings is not settings)
        return None
    return early


def gateway_address(launched: LaunchedJVM) -> tuple[int, str]:
    """Wait for the JVM's gateway port and secret (the file pyspark's launch_gateway waits for).

    Raises RuntimeError if the JVM exits first: its log then says why (jvm.launch diagnoses it)."""
    try:
        while launched.process.poll() is None and not launched.info_file.is_file():
            time.sleep(POLL_SECONDS)
        if not launched.info_file.is_file():
            raise RuntimeError(f"the Spark JVM exited (code {launched.process.returncode}) before it opened its gateway")
        data = launched.info_file.read_bytes()
        (port,) = struct.unpack("!i", data[:4])  # pyspark.serializers: read_int, then UTF8Deserializer
        (length,) = struct.unpack("!i", data[4:8])
        return port, data[8 : 8 + length].decode("utf-8")
    finally:
        shutil.rmtree(launched.info_file.parent, ignore_errors=True)


def discard(release: bool = False) -> None:
    """End the early JVM if no launch has taken it (the kernel's start failed before it asked)."""
    global _early
    with _lock:
        early, _early = _early, None
    if early is not None:
        end(early, release)


def end(early: LaunchedJVM, release: bool) -> None:
    """Stop a launched JVM no one will use (an early one not taken, a launch that failed), with its temp
    folder and, if ``release``, its UI port."""
    process = early.process
    try:
        if process.stdin:
            process.stdin.close()  # the gateway exits when its stdin closes
        processes.end_popen(process, 10)
    except OSError:
        pass
    shutil.rmtree(early.info_file.parent, ignore_errors=True)
    if early.folder is not None:
        localdirs.remove(early.folder)
    if release:
        release_port(early.settings)


def release_port(settings: SessionSettings) -> None:
    if settings.ui_port is not None:
        settings.ui_port.release()
