"""Ending a kernel's processes for good: its process group, then the JVMs it started.

Used by the provisioner (a kernel Jupyter shuts down) and the warm pool (an idle kernel it culls). A JVM
that pyspark starts runs in the kernel's process group, but one that a user's code or a cluster client
moved elsewhere would survive a group kill, so the java processes under a kernel are noted while it
runs (pid and start time, which tells a reused PID apart) and ended afterwards.
"""

from __future__ import annotations

import os
import signal
import time

KILL_WAIT_SECONDS = 5.0


def java_children(pid: int) -> dict[int, float]:
    """pid -> start time of the java processes under ``pid``."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return {}
    found = {}
    for child in children:
        try:
            if "java" in child.name():
                found[child.pid] = child.create_time()
        except psutil.Error:
            continue
    return found


def end_processes(processes: dict[int, float]) -> None:
    """Terminate, then kill, the processes that are still the ones noted (pid and start time)."""
    import psutil

    alive = []
    for pid, created in processes.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == created:  # the same process, not a reused PID
                alive.append(process)
        except psutil.Error:
            continue
    for process in alive:
        process.terminate()
    _, lingering = psutil.wait_procs(alive, timeout=KILL_WAIT_SECONDS)
    for process in lingering:
        process.kill()


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except OSError:
        return True
    return False


def end_group(pgid: int, wait: float = KILL_WAIT_SECONDS) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``wait`` seconds (blocking)."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, signum)
        except OSError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if group_gone(pgid):
                return
            time.sleep(0.1)
