"""Telling a process apart from a later one with its pid, and ending processes: one rule each, for all.

The kernel records its JVMs' temp folders (localdirs.py) and its UI's route (uiroute.py) by process; the
Jupyter server notes the JVMs under each kernel to end them at its shutdown (server/jvmwatch.py) and
checks that the JVM a route names still listens on its port. Each needs to know whether a process it
recorded is still that process, and not another that was given the same pid since: a pid is reused,
a pid and its start time together are not. Ending processes comes up as often: a kernel's whole
process group (the provisioner, the pool), the JVMs it noted, a JVM the kernel launched (kernel/jvm.py,
kernel/prelaunch.py). Each is terminate, a wait, then kill.

Shared by the kernel, the Jupyter server and the command line: imports none of them, nor Spark. psutil
is imported where it is used, so that importing this module costs a kernel's start nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psutil

# How far two readings of one process's start time may differ. psutil gives the start time as the
# kernel's exact count of clock ticks since boot plus the boot time, and Linux gives the boot time in
# whole seconds worked out from the wall clock at each reading, so a reading in another process or a
# moment later can differ by a second (NTP slewing the clock moves the rounding). Records cross
# processes (the kernel writes one, the server reads it; a server that takes a kernel over reads
# another server's), so an exact comparison would take a live process for a gone one. One second is
# safe the other way too: for a new process to get the same pid within a second of the old one's start,
# the system would have to go through every other pid (pid_max: 4194304 on 64-bit Linux) in that second.
# Only a step of the wall clock by more than a second (settimeofday, not NTP's slewing) defeats it.
START_TIME_TOLERANCE_SECONDS = 1.0
KILL_WAIT_SECONDS = 5.0  # after SIGTERM, before SIGKILL
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as it can be told apart from a later one with the same pid. ``create_time`` is psutil's
    (seconds since the epoch); records on disk (localdirs.py) keep these two field names."""

    pid: int
    create_time: float


def identify(pid: int) -> ProcessIdentity | None:
    """The identity of the process ``pid`` now, or None when there is none."""
    import psutil

    try:
        return ProcessIdentity(pid, psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def find(identity: ProcessIdentity) -> psutil.Process | None:
    """The process ``identity`` names while it runs; None once it has exited (a zombie has, too) or its
    pid names another process. Raises psutil.AccessDenied when the system will not say."""
    import psutil

    try:
        process = psutil.Process(identity.pid)
        with process.oneshot():
            if abs(process.create_time() - identity.create_time) > START_TIME_TOLERANCE_SECONDS:
                return None  # the pid now belongs to another process
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    return process


def is_running(identity: ProcessIdentity) -> bool:
    """Whether that very process still runs. Unknowable (access denied) counts as running: a caller that
    took a live process for a gone one would remove what it still uses."""
    import psutil

    try:
        return find(identity) is not None
    except psutil.Error:
        return True


def tcp_connections(process: psutil.Process) -> list[Any]:
    """``process``'s TCP sockets, under either of psutil's names (6.0 renamed connections to net_connections;
    the floor, 5.9, has only the old one)."""
    return list(process.net_connections("tcp") if hasattr(process, "net_connections") else process.connections("tcp"))


def descendants_named(pid: int, name_part: str) -> list[ProcessIdentity]:
    """The processes under ``pid`` (children, theirs, ...) whose name contains ``name_part``."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for child in children:
        try:
            if name_part in child.name():
                found.append(ProcessIdentity(child.pid, child.create_time()))
        except psutil.Error:
            continue
    return found


def end_processes(processes: Sequence[psutil.Process], wait: float = KILL_WAIT_SECONDS) -> None:
    """SIGTERM ``processes``, then SIGKILL those still running ``wait`` seconds later (blocking).

    Never reaps them (no waitpid): a Popen that started one must see its real exit status, and after
    someone else's waitpid it reads 0. A process that exits meanwhile (or whose pid psutil sees reused)
    is skipped."""
    import psutil

    for process in processes:
        try:
            process.terminate()
        except psutil.Error:
            pass
    deadline = time.monotonic() + wait
    while any(_still_running(process) for process in processes) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    for process in processes:
        if _still_running(process):
            try:
                process.kill()
            except psutil.Error:
                pass


def end_noted(identities: Iterable[ProcessIdentity], wait: float = KILL_WAIT_SECONDS) -> None:
    """``end_processes`` for the noted processes that are still the ones noted; a pid now another
    process's is left alone."""
    import psutil

    found = []
    for identity in identities:
        try:
            process = find(identity)
        except psutil.Error:
            continue
        if process is not None:
            found.append(process)
    end_processes(found, wait)


def _still_running(process: psutil.Process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def end_popen(process: subprocess.Popen[Any], wait: float = KILL_WAIT_SECONDS) -> None:
    """Terminate the child ``process``; kill it if it has not exited ``wait`` seconds later; reap it."""
    process.terminate()
    try:
        process.wait(wait)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def group_gone(pgid: int) -> bool:
    """Whether no process is left in the process group ``pgid`` (an unreaped zombie still counts)."""
    try:
        os.killpg(pgid, 0)
    except OSError:
        return True
    return False


def end_group(pgid: int, wait: float = KILL_WAIT_SECONDS) -> None:
    """SIGTERM the process group ``pgid``, then SIGKILL what is left of it ``wait`` seconds later
    (blocking: off an event loop, run it in a thread)."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, signum)
        except OSError:
            return  # gone already
        if _group_gone_within(pgid, wait):
            return


def _group_gone_within(pgid: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while not group_gone(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True
