"""The route file: where the Jupyter server's route to a kernel's Spark UI leads, and whether it still may.

A local-mode kernel's UI sits behind JWSFilter (isolation.py, kernel/uiprotect.py). Its kernel writes
``<runtime dir>/pyspark-ui-<key>.json`` (mode 0600, in the user's own runtime folder): the route's
key, the UI's token, the port Spark bound (once it has), which JVM bound it (pid, start time, uid),
and which kernel process wrote it (pid, start time): processes.py tells a process from a later one of its pid.
The server extension (server/uiproxy.py) reads it for ``<base_url>pyspark-ui/<key>/...``.

Keyed by a random key chosen in the kernel before its JVM starts (the UI's ``spark.ui.proxyBase`` names
it), not by a port: a port picked before Spark binds it can be lost to another program in between, and
Spark then binds another; a key cannot be lost, and the file says which port the UI did bind.

A file is a claim, not a proof: the JVM that made it can die (the OOM killer picks the biggest process)
while its kernel lives on, and another local account can then bind the freed port. So before each
forward the server checks that the socket listening on that port is the recorded JVM's (``listener``).
Imported by the kernel (to write) and by the Jupyter server (to read): nothing here imports Spark.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pyspark_kernel import processes

ROUTE_FILE = "pyspark-ui-{key}.json"
# Listening addresses through which 127.0.0.1:<port> reaches the socket (the UI binds all interfaces
# unless SPARK_LOCAL_IP says otherwise): a socket on another address would leave loopback to others.
REACHES_LOOPBACK = ("127.0.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1")
GONE = (
    "The Spark UI of this kernel is gone: its JVM exited (or was killed, e.g. for lack of memory). Run %spark restart in its notebook, then open the new link."
)


@dataclass(frozen=True)
class Route:
    """What one route file says: the route of ``key`` leads to ``port`` with ``token``, as long as the
    JVM ``jvm_pid`` (started at ``jvm_started``, run by ``uid``) is the one that listens there."""

    key: str
    token: str
    jvm_pid: int
    jvm_started: float
    uid: int
    port: int | None = None  # the port Spark bound; None until it has
    pid: int = 0  # the kernel process that wrote the file...
    kernel_started: float | None = None  # ...and its start time (None in a file of an older version)


def new_key() -> str:
    """A route key: random, so nothing of another kernel's can collide with it; never all digits, which
    the route reads as a port (links of older versions, and kernels started without a route)."""
    return "k" + secrets.token_hex(8)


def runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def route_path(key: str, folder: Path | None = None) -> Path:
    return (folder or runtime_dir()) / ROUTE_FILE.format(key=key)


def jvm_identity(pid: int) -> tuple[float, int]:
    """The start time and real uid of process ``pid``: with the pid, they name that process for good."""
    import psutil

    process = psutil.Process(pid)
    return process.create_time(), process.uids().real


def own_start_time() -> float:
    """This process's start time (psutil's), which a route it writes records beside its pid."""
    import psutil

    return psutil.Process().create_time()


def kernel_alive(route: Route) -> bool:
    """Whether the kernel process that wrote ``route`` still runs (by pid alone for an older file's route)."""
    if route.kernel_started is None:
        return processes.identify(route.pid) is not None
    return processes.is_running(processes.ProcessIdentity(route.pid, route.kernel_started))


def write_route(route: Route, folder: Path | None = None) -> Path:
    """The route file, readable by this user alone, where this user's Jupyter server looks for it."""
    path = route_path(route.key, folder)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an older file of this key may have had other bits
        json.dump(asdict(route), handle)
    return path


def load(path: Path) -> Route | None:
    """The route in ``path`` if its kernel still runs; None otherwise (or if the file is not a route's).

    A file left by a kernel that was killed names a process that is gone; its JVM went with it."""
    try:
        facts = json.loads(path.read_text())
        route = Route(**{name: facts[name] for name in Route.__dataclass_fields__ if name in facts})
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(route.token, str) or not (route.port is None or isinstance(route.port, int)) or not isinstance(route.pid, int):
        return None
    if not (route.kernel_started is None or isinstance(route.kernel_started, (int, float))) or not kernel_alive(route):
        return None
    return route


def read_route(key: str, folder: Path | None = None) -> Route | None:
    """The live route of ``key``; a key of digits is a port: the live route whose UI bound that port."""
    if key.isdigit():
        return next((route for route in routes(folder) if route.port == int(key)), None)
    return load(route_path(key, folder))


def routes(folder: Path | None = None) -> Iterator[Route]:
    """This user's live routes."""
    for path in sorted((folder or runtime_dir()).glob(ROUTE_FILE.format(key="*"))):
        route = load(path)
        if route is not None:
            yield route


def read_token(port: int, folder: Path | None = None) -> str | None:
    """The token of the live kernel whose UI bound ``port``, for a caller that reaches the port itself."""
    route = read_route(str(port), folder)
    return route.token if route else None


def listener(route: Route) -> str | None:
    """None when the socket listening for 127.0.0.1:``route.port`` is the route's JVM's; else what is
    wrong, in words, with what to do. Run it off the server's event loop: it reads /proc.

    Every forwarded request asks, and a page loads a dozen, so it is kept cheap. Finding which process
    listens on a port means reading the system's socket tables (psutil's net_connections: tens of ms
    on a loaded machine), so that is done once per JVM and port: the descriptor found is remembered
    with its socket's inode, and while the JVM (same pid and start time) still holds that socket open,
    nobody else can listen there. A later request then costs the JVM's start time and one readlink.
    """
    import psutil

    try:
        process = processes.find(processes.ProcessIdentity(route.jvm_pid, route.jvm_started))
        if process is None or process.uids().real != route.uid:
            return GONE  # the pid now names another process, or a dead one its kernel has not reaped yet
        key = (route.jvm_pid, route.jvm_started, route.port)
        if key in _held and descriptor_target(route.jvm_pid, _held[key][0]) == _held[key][1]:
            return None
        _held.pop(key, None)
        descriptor = listening_descriptor(process, route.port)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return GONE
    except psutil.AccessDenied as error:
        return f"The Spark UI's JVM (pid {route.jvm_pid}) cannot be checked by the Jupyter server ({error}), so its port is not forwarded to."
    if descriptor is None:
        return (
            f"This kernel's Spark UI no longer listens on port {route.port} (its session was stopped?). "
            "Start a session (or run %spark restart) in its notebook, then open the new link."
        )
    target = descriptor_target(route.jvm_pid, descriptor)
    if target is not None and target.startswith("socket:"):
        if len(_held) > 256:  # JVMs long gone: forget them all, the live ones are found again
            _held.clear()
        _held[key] = (descriptor, target)
    return None


_held: dict[tuple[int, float, int | None], tuple[int, str]] = {}  # (JVM, port) -> its listening descriptor, "socket:[inode]"


def listening_descriptor(process: Any, port: int | None) -> int | None:
    """The descriptor of ``process`` (psutil's) listening on ``port`` at an address 127.0.0.1 reaches
    (-1 where the system does not say which), or None when it does not listen there."""
    import psutil

    for connection in processes.tcp_connections(process):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.laddr.ip in REACHES_LOOPBACK:
            return int(connection.fd)  # psutil says -1 where the system does not
    return None


def descriptor_target(pid: int, descriptor: int) -> str | None:
    """What descriptor ``descriptor`` of process ``pid`` is open on (``socket:[inode]``), where /proc says."""
    try:
        return os.readlink(f"/proc/{pid}/fd/{descriptor}")
    except OSError:
        return None


def is_own(path: Path) -> bool:
    """Whether ``path`` holds a route this process wrote (no other process has rewritten it since)."""
    try:
        facts: Any = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(facts, dict) and facts.get("pid") == os.getpid()
