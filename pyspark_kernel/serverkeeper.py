"""The keeper of one local Spark Connect server: stops it once no kernel has used it for its idle time.

pyspark's persistent server (localserver.py) runs until someone stops it. Started beside the server by
the kernel that started it (``python -m pyspark_kernel.serverkeeper FOLDER``, in a session of its own,
so that the kernel's exit or interrupt does not end it), the keeper looks at the server's leases every
few seconds: once none has been alive for the idle time, it stops the server and exits. It exits too
when the server is gone (killed, stopped by hand); the next kernel to start a server starts a keeper.

A lease is taken, and the stop decided, under one lock (``ServerPlace.keeper_lock``), so a kernel that
joins at the last moment either counts or finds the server stopped and starts another.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from pyspark_kernel import localserver, processes

CHECK_SECONDS = 5.0
KEEPER_FILE = "keeper.json"


def keeper_running(place: localserver.ServerPlace) -> bool:
    """Whether a keeper of this server's folder runs now."""
    record = localserver.read_json(place.folder / KEEPER_FILE) or {}
    try:
        identity = processes.ProcessIdentity(int(record["pid"]), float(record["started"]))
    except (KeyError, TypeError, ValueError):
        return False
    return processes.is_running(identity)


def start_keeper(place: localserver.ServerPlace) -> None:
    """Start a keeper for the server in ``place`` unless one runs (the caller holds pyspark's discovery lock)."""
    if keeper_running(place):
        return
    place.log_dir.mkdir(mode=0o700, exist_ok=True)
    log = open(place.log_dir / "keeper.log", "ab")  # noqa: SIM115 (handed to the child)
    try:
        keeper = subprocess.Popen(
            [sys.executable, "-m", "pyspark_kernel.serverkeeper", str(place.folder)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log.close()
    # Recorded here, not by the keeper once its Python is up: a kernel joining meanwhile must see it runs.
    identity = processes.identify(keeper.pid)
    if identity is not None:
        localserver.write_private_json(place.folder / KEEPER_FILE, {"pid": identity.pid, "started": identity.create_time})


def keep(place: localserver.ServerPlace, check_seconds: float = CHECK_SECONDS) -> str:
    """Watch until the server is gone or idle for its time; returns why the keeper ends.

    The server is followed by its process, found once: a folder removed under it (a temp cleaner, a
    test's temp folder) takes its leases and pyspark's files along, and the server must still stop."""
    server = localserver.server_identity(place)
    if server is None:
        return "no server runs in this folder"
    timeout = localserver.recorded_idle_timeout(place)
    idle_since: float | None = None
    while processes.is_running(server):
        folder_gone = not place.folder.is_dir()  # no kernel can lease it any more: idle from now on
        with contextlib.nullcontext() if folder_gone else place.keeper_lock():
            idle_since = None if not folder_gone and localserver.live_leases(place) else (idle_since or time.monotonic())
            if idle_since is not None and time.monotonic() - idle_since >= timeout:
                localserver.stop(place, identity=server)
                why = f"its folder {place.folder} was removed and no kernel can join it" if folder_gone else "no kernel used the server"
                return f"{why}: stopped after {timeout:g} s idle"
        time.sleep(min(check_seconds, max(timeout / 4, 0.5)))
    return "the server is gone"


def main(argv: list[str]) -> int:
    place = localserver.ServerPlace(Path(argv[0]))
    reason = keep(place)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} keeper {os.getpid()}: {reason}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
