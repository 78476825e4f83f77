"""The running cell's progress display: one monitor per session, begun and ended around each cell.

A monitor (progress.py) belongs to the session it follows (a SparkContext, or a Spark Connect session)
and is made anew with it; between cells it is only re-pointed at the next cell's message, so a cell
costs no new thread and no JVM call. The controller (controller.py) calls this around each cell and
tells the cell, once, when a monitor's poll failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyspark_kernel.kernel.backends.base import Backend, Monitor
from pyspark_kernel.kernel.progress_display import Publisher


class SessionProgress:
    """The progress display of each cell, from the monitor of the session that cell runs in.

    ``publisher()`` gives a Publisher that addresses the running cell from another thread (the
    monitor's); ``enabled`` is the kernelspec's PYSPARK_KERNEL_PROGRESS, switched by %spark progress.
    """

    def __init__(self, backend: Backend, publisher: Callable[[], Publisher], enabled: bool = True) -> None:
        self.backend = backend
        self.publisher = publisher
        self.enabled = enabled
        self._monitor: Monitor | None = None
        self._monitor_source: Any = None  # what the monitor follows (the SparkContext or Connect session)

    def begin(self, spark: Any, tag: str) -> Monitor | None:
        """Follow the cell's work (tagged ``tag``) in the session ``spark``, unless progress is off."""
        if not self.enabled:
            return None
        monitor = self._current_monitor(spark)
        monitor.begin(tag)
        return monitor

    def end(self) -> BaseException | None:
        """End the cell's display; returns the first failed poll of the session, once (then None)."""
        if self._monitor is None:
            return None
        self._monitor.end()
        return self._monitor.take_failure()

    def close(self) -> None:
        if self._monitor is not None:
            self._monitor.close()

    def _current_monitor(self, spark: Any) -> Monitor:
        """The progress monitor of the session ``spark``, made anew when the session is."""
        source = self.backend.progress_source(spark)
        if self._monitor is None or self._monitor_source is not source:
            if self._monitor is not None:
                self._monitor.close()
            self._monitor = self.backend.progress_monitor(source, self.publisher())
            self._monitor_source = source
        else:
            self._monitor.publish = self.publisher()
        return self._monitor
