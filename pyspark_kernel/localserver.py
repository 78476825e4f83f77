"""One local Spark Connect server per user and Spark setup, shared by the kernels of ``install --remote 'local[*]'``.

pyspark 4.3 starts the server and finds it again (``pyspark.sql.connect.local_server``: a discovery file,
a 0600 token in a 0700 folder, loopback only, a server-side session per client). This module adds only
what notebooks need around it, in files beside pyspark's own:

- a folder per Spark setup (version, SPARK_HOME, master, the server's settings): pyspark keeps one server
  per user, so a kernelspec of another Spark would find a server it cannot use and fail to start its own;
- leases, one file per kernel using the server, so that its keeper (serverkeeper.py) stops it once no
  kernel has used it for the idle time, and nothing runs on after the last notebook closed;
- the server's record beyond pyspark's: its Spark UI's port and key, the Python and PYTHONPATH that
  stop it (with pyspark's own ``--stop``), the idle time;
- what ``pyspark-kernel check`` and ``pyspark-kernel server`` show and do.

Shared by the kernel (kernel/backends/localserver.py starts and joins), the keeper, the command line
and the Jupyter server (which stops its user's unused servers when it stops): imports none of them, nor Spark.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark_kernel import localdirs, processes

LOCAL_REMOTE = re.compile(r"local(\[(\*|[1-9][0-9]*)\])?")
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
DEFAULT_IDLE_TIMEOUT = 300.0  # seconds without a kernel before the keeper stops the server
FOLDER_PREFIX = "pyspark-kernel-"
DISCOVERY = "connect-local.json"  # pyspark's file name (SPARK_LOCAL_CONNECT_DISCOVERY points at it)
RECORD = "server.json"  # ours: ui port and key, how to stop it
LEASES = "leases"
STOP_WAIT_SECONDS = 20.0


def is_local_remote(remote: str | None) -> bool:
    """Whether a SPARK_REMOTE names a local server (``local``, ``local[N]``, ``local[*]``) rather than a URL."""
    return bool(remote) and LOCAL_REMOTE.fullmatch(remote or "") is not None


def root() -> Path:
    """This user's folder of servers: pyspark's own per-user folder, ``<tmp>/spark-connect-<user>``."""
    return Path(tempfile.gettempdir()) / f"spark-connect-{getpass.getuser()}"


@dataclass(frozen=True)
class ServerPlace:
    """The folder of one server: pyspark's discovery file, its daemon's pid file and logs, our record and leases."""

    folder: Path

    @property
    def discovery(self) -> Path:
        return self.folder / DISCOVERY

    @property
    def record_path(self) -> Path:
        return self.folder / RECORD

    @property
    def leases(self) -> Path:
        return self.folder / LEASES

    @property
    def log_dir(self) -> Path:
        return self.folder / "logs"

    def make(self) -> None:
        """The folders, 0700 and this user's; raises PermissionError for a folder another account made."""
        for folder in (self.folder.parent, self.folder, self.leases):
            if not localdirs.private_folder(folder):
                raise PermissionError(f"{folder} is not a folder of this user")

    @contextlib.contextmanager
    def keeper_lock(self) -> Iterator[None]:
        """Held while a kernel takes a lease and while the keeper decides to stop: no stop between them."""
        with open(self.folder / "keeper.lock", "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            yield


def place_for(spark_home: str, spark_version: str, master: str, submit_args: str) -> ServerPlace:
    """The folder of the server a kernelspec's kernels share: one per Spark and per server settings."""
    digest = hashlib.sha256("\0".join((os.path.realpath(spark_home), master, submit_args)).encode()).hexdigest()[:10]
    return ServerPlace(root() / f"{FOLDER_PREFIX}{spark_version}-{digest}")


def pyspark_version() -> str:
    """The version of the pyspark this process would import, read without importing it (a second of CPU)."""
    from importlib.util import find_spec

    spec = find_spec("pyspark")
    origin = spec.origin if spec else None
    if origin:
        with contextlib.suppress(OSError):
            found = re.search(r"__version__[^=]*=\s*[\"']([^\"']+)", (Path(origin).parent / "version.py").read_text())
            if found:
                return found.group(1)
    return "unknown"


def place_from(environ: Mapping[str, str]) -> ServerPlace:
    """The server folder of the kernelspec whose kernel has ``environ``."""
    from importlib.util import find_spec

    spec = find_spec("pyspark")
    spark_home = environ.get("SPARK_HOME") or (str(Path(spec.origin).parent) if spec and spec.origin else "")
    return place_for(spark_home, pyspark_version(), environ.get("SPARK_REMOTE", "local[*]"), environ.get("PYSPARK_SUBMIT_ARGS", ""))


def server_cwd(place: ServerPlace) -> Path:
    """Where the server runs, so where Spark resolves a relative path of any notebook on it: the user's home
    (as for a Jupyter server started there), else the server's own folder (an account with no home)."""
    home = Path(os.path.expanduser("~"))
    return home if home.is_dir() and os.access(home, os.W_OK | os.X_OK) else place.folder


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def recorded_idle_timeout(place: ServerPlace) -> float:
    """The idle time the server's starter recorded (its kernelspec's), in seconds."""
    try:
        return float((read_json(place.record_path) or {}).get("idle_timeout", DEFAULT_IDLE_TIMEOUT))
    except (TypeError, ValueError):
        return DEFAULT_IDLE_TIMEOUT


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Written whole (a partial file renamed over it), mode 0600: it holds the UI's key."""
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(partial, path)


def server_identity(place: ServerPlace) -> processes.ProcessIdentity | None:
    """The server process pyspark's discovery file names, if that very process still runs."""
    found = read_json(place.discovery)
    record = read_json(place.record_path) or {}
    if not found or not isinstance(found.get("pid"), int):
        return None
    started = record.get("server_started") if record.get("server_pid") == found["pid"] else None
    identity = processes.ProcessIdentity(found["pid"], float(started)) if started else processes.identify(found["pid"])
    return identity if identity is not None and processes.is_running(identity) else None


# -- leases: which kernels use a server ----------------------------------------------------------------
def lease_path(place: ServerPlace, identity: processes.ProcessIdentity) -> Path:
    return place.leases / f"{identity.pid}-{identity.create_time:.2f}"


def take_lease(place: ServerPlace, pid: int | None = None) -> Path:
    """This kernel uses the server from now on, until its process exits (``live_leases`` then drops it)."""
    identity = processes.identify(pid or os.getpid())
    assert identity is not None
    path = lease_path(place, identity)
    path.touch(mode=0o600)
    return path


def live_leases(place: ServerPlace) -> list[processes.ProcessIdentity]:
    """The kernels that use the server now; a lease of a kernel that died (kill -9) is removed."""
    alive = []
    for path in sorted(place.leases.glob("*-*")):
        pid, _, started = path.name.partition("-")
        try:
            identity = processes.ProcessIdentity(int(pid), float(started))
        except ValueError:
            continue
        if processes.is_running(identity):
            alive.append(identity)
        else:
            path.unlink(missing_ok=True)
    return alive


# -- what check and `pyspark-kernel server` show and do ----------------------------------------------
@dataclass(frozen=True)
class ServerStatus:
    place: ServerPlace
    pid: int | None  # None: recorded but no longer running
    port: int | None
    spark_version: str | None
    ui_port: int | None
    rss_bytes: int | None
    kernels: int
    idle_timeout: float

    def line(self) -> str:
        if self.pid is None:
            return f"{self.place.folder.name}: not running (Spark {self.spark_version or '?'})"
        memory = f"{self.rss_bytes / 2**20:.0f} MB" if self.rss_bytes else "? MB"
        return (
            f"pid {self.pid}, Spark {self.spark_version}, 127.0.0.1:{self.port} (Spark UI port {self.ui_port or '?'}), "
            f"{memory} resident, {self.kernels} kernel(s) attached, stops {self.idle_timeout:g} s after the last one"
        )


def status(place: ServerPlace) -> ServerStatus:
    found = read_json(place.discovery) or {}
    record = read_json(place.record_path) or {}
    identity = server_identity(place)
    rss = None
    if identity is not None:
        with contextlib.suppress(Exception):
            import psutil

            rss = psutil.Process(identity.pid).memory_info().rss
    return ServerStatus(
        place=place,
        pid=identity.pid if identity else None,
        port=found.get("port"),
        spark_version=found.get("spark_version") or record.get("spark_version"),
        ui_port=record.get("ui_port"),
        rss_bytes=rss,
        kernels=len(live_leases(place)) if place.leases.is_dir() else 0,
        idle_timeout=recorded_idle_timeout(place),
    )


def places() -> list[ServerPlace]:
    """Every server folder of this user that pyspark-kernel made."""
    try:
        return [ServerPlace(folder) for folder in sorted(root().glob(f"{FOLDER_PREFIX}*")) if folder.is_dir()]
    except OSError:
        return []


def stop(place: ServerPlace, wait: float = STOP_WAIT_SECONDS, identity: processes.ProcessIdentity | None = None) -> bool:
    """Stop the server with pyspark's own ``--stop`` (it checks the process is the server it recorded,
    then clears the discovery file), then make sure it has exited. True when a server was stopped.
    ``identity``: the server's process as the caller knows it (the keeper), if the files may be gone."""
    identity = identity or server_identity(place)
    record = read_json(place.record_path) or {}
    python = record.get("python") or sys.executable
    env = {**os.environ, "SPARK_LOCAL_CONNECT_DISCOVERY": str(place.discovery)}
    if record.get("pythonpath"):
        env["PYTHONPATH"] = record["pythonpath"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run([python, "-m", "pyspark.sql.connect.local_server", "--stop"], env=env, capture_output=True, timeout=60, check=False)
    if identity is None:
        return False
    process = processes.find(identity) if processes.is_running(identity) else None
    if process is not None:
        processes.end_processes([process], wait)  # pyspark sent SIGTERM; a JVM that hangs in its shutdown gets SIGKILL
    deadline = time.monotonic() + wait
    while processes.is_running(identity) and time.monotonic() < deadline:
        time.sleep(processes.POLL_SECONDS)
    with contextlib.suppress(OSError):
        place.discovery.unlink(missing_ok=True)
    return True


def stop_unused(exiting: int | None = None) -> list[int]:
    """Stop this user's servers that no kernel uses (a Jupyter server stopping: its kernels are gone);
    returns their pids. A server another Jupyter server's kernel still uses is left alone.

    ``exiting``: the pid of the Jupyter server that is exiting; its own kernels do not count. JupyterHub
    stops a user's server with SIGINT, on which jupyter_server exits without shutting its kernels down:
    they end a moment later, when they see their parent gone, so at its exit they still run."""
    stopped = []
    for place in places():
        identity = server_identity(place)
        if identity is None:
            continue
        with place.keeper_lock():
            users = [lease for lease in live_leases(place) if exiting is None or parent_pid(lease.pid) != exiting]
            if not users and stop(place):
                stopped.append(identity.pid)
    return stopped


def parent_pid(pid: int) -> int | None:
    import psutil

    try:
        return int(psutil.Process(pid).ppid())
    except psutil.Error:
        return None
