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


def idle_timeout(place: localserver.ServerPlace) -> float:
    record = localserver.read_json(place.record_path) or {}
    try:
        return float(record.get("idle_timeout", localserver.DEFAULT_IDLE_TIMEOUT))
    except (TypeError, ValueError):
        return localserver.DEFAULT_IDLE_TIMEOUT


def keep(place: localserver.ServerPlace, check_seconds: float = CHECK_SECONDS) -> str:
    """Watch until the server is gone or idle for its time; returns why the keeper ends."""
    idle_since: float | None = None
    while True:
        if localserver.server_identity(place) is None:
            return "the server is gone"
        with place.keeper_lock():
            if localserver.live_leases(place):
                idle_since = None
            else:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= idle_timeout(place):
                    localserver.stop(place)
                    return f"no kernel used the server for {idle_timeout(place):g} s: stopped"
        time.sleep(min(check_seconds, max(idle_timeout(place) / 4, 0.5)))


def main(argv: list[str]) -> int:
    place = localserver.ServerPlace(Path(argv[0]))
    reason = keep(place)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} keeper {os.getpid()}: {reason}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
