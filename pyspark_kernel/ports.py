"""Ports for the Spark UI, chosen before Spark binds them, and held until it has.

A module of its own: both the kernel (settings.py, behind a proxy) and the launcher plugin
(provisioner.py, inside the Jupyter server, which must not import the kernel's modules) pick the UI's
port before the JVM starts, both with ``reserve_ui_port``. A port that is merely free can be picked twice by kernels starting
together (both then get proxyBase .../4040), so a pick also takes a lock on a file named after the
port, in a folder of the user's (not of one Jupyter runtime folder: two servers of one user, each with
its own, picked the same port, and Spark then bound the next one). The lock (``flock``) is held by an
open file: it goes when the holder releases it or its process ends, however it ends, so nothing stale
is left to clean up.
"""

from __future__ import annotations

import fcntl
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pyspark_kernel.errors import Problem
from pyspark_kernel.localdirs import private_folder, uid

PORT_TRIES = 500
# Spark's own default spark.ui.port. A kernel that picks its UI's port itself (kernel/settings.py, behind a
# proxy whose link names the port) searches from here: the first kernel in the Docker image gets the
# 4040 the image publishes.
UI_PORT_START = 4040
# The provisioner's kernels search from this many ports higher, on purpose. A Spark that picks its own UI
# port (a kernelspec without the provisioner and without a proxy, a pyspark shell) holds no lock here: it
# binds 4040, 4041, ... as it finds them free, and may take a port a provisioner reserved for a kernel
# whose JVM has not bound it yet (that kernel's Spark then binds another). Starting above them, the two
# kinds do not race, as long as fewer than this many unlocked Sparks run on the machine.
UNHELD_UI_PORTS = 10


class NoFreePortError(Problem, RuntimeError):
    """Every port in the searched range is taken or held."""


@dataclass
class PortReservation:
    """A port no other kernel of this user will pick while this is held."""

    port: int
    lock: IO[bytes] | None

    def release(self) -> None:
        if self.lock is not None:
            self.lock.close()  # closing the file drops the flock
            self.lock = None


def lock_folder() -> Path:
    """``<tmp>/pyspark-kernel-ports-<uid>``, made 0700; Jupyter's runtime folder if that name is taken by
    a folder this user does not own alone."""
    folder = Path(tempfile.gettempdir()) / f"pyspark-kernel-ports-{uid()}"
    try:
        if private_folder(folder):
            return folder
    except OSError:
        pass
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir()) / "pyspark-kernel-ports"


def is_free(port: int) -> bool:
    """Nothing on this machine listens on ``port`` (any address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def hold(port: int) -> IO[bytes] | None:
    """The open lock file of ``port`` if this call got its lock, else None (another kernel holds it)."""
    folder = lock_folder()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = open(folder / f"{port}.lock", "ab")  # noqa: SIM115 (held open: the lock lives as long as the file)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None
    return lock


def reserve_port(start: int, tries: int = PORT_TRIES) -> PortReservation:
    """The first port from ``start`` that is free and held by no other kernel, held for the caller."""
    for port in range(start, start + tries):
        if not is_free(port):
            continue
        lock = hold(port)
        if lock is None:
            continue
        if is_free(port):  # still free now that it is ours: nobody bound it while we took the lock
            return PortReservation(port, lock)
        lock.close()
    raise NoFreePortError(f"No free port for the Spark UI in {start}-{start + tries - 1}.", "set --conf spark.ui.port=PORT in the kernelspec.")


def reserve_ui_port(leave_unheld_ports: bool = False) -> PortReservation:
    """A port for a kernel's Spark UI, held for the caller: the first free one from UI_PORT_START, or with
    ``leave_unheld_ports`` (the provisioner) from UNHELD_UI_PORTS above it."""
    return reserve_port(UI_PORT_START + (UNHELD_UI_PORTS if leave_unheld_ports else 0))
