"""The JVMs under a kernel, noted while it runs so that none survives it.

Used by the provisioner (a kernel Jupyter shuts down) and the warm pool (an idle kernel it culls). A JVM
that pyspark starts runs in the kernel's process group, which the kernel's end signals as a whole; but
one that a user's code or a cluster client moved elsewhere would survive that, so the java processes
under a kernel are noted while it runs, each by pid and start time (processes.py: a pid reused since
names another process, which is left alone), and ended after it.
"""

from __future__ import annotations

import threading
import time

from pyspark_kernel import processes

# A scan for a kernel's JVMs reads every process's /proc entry in Python (psutil's children()); the
# server's restarter polls each kernel every 3 s, so with many kernels unthrottled scans starve its loop.
NOTE_EVERY_SECONDS = 10.0
_SCANNING = threading.Lock()  # one poll-time scan at a time in the server process


class KernelJvms(dict[int, float]):
    """The java processes seen under one kernel, pid -> start time (psutil's): a plain dict, as the
    provisioner's info carries it to a server that takes the kernel over."""

    noted_at = float("-inf")  # when ``note_unless_scanning`` last noted them (monotonic)

    def note(self, kernel_pid: int | None) -> None:
        """Note the java processes under ``kernel_pid`` now (blocking: it reads /proc)."""
        if kernel_pid:
            self.update({jvm.pid: jvm.create_time for jvm in processes.descendants_named(kernel_pid, "java")})

    def due(self) -> bool:
        """Whether NOTE_EVERY_SECONDS have gone by since the last ``note_unless_scanning`` (cheap: ask first)."""
        return time.monotonic() - self.noted_at >= NOTE_EVERY_SECONDS

    def note_unless_scanning(self, kernel_pid: int | None) -> None:
        """``note``, skipped (due again at the next poll) while another kernel's scan runs. Unthrottled,
        16 kernels' scans held the GIL so often that the server's /api/status p99 was 274-433 ms
        (bench/burst.py)."""
        if not _SCANNING.acquire(blocking=False):
            return
        try:
            self.note(kernel_pid)
            self.noted_at = time.monotonic()
        finally:
            _SCANNING.release()

    def end(self) -> None:
        """Terminate, then kill, the noted JVMs that still run (blocking), and forget them all."""
        noted = [processes.ProcessIdentity(pid, created) for pid, created in self.items()]
        self.clear()
        processes.end_noted(noted)
