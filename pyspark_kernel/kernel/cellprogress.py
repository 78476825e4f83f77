"""The running cell's progress display: one monitor per session, begun and ended around each cell.

A monitor (progress.py) belongs to the session it follows (a SparkContext, or a Spark Connect session)
and is made anew with it; between cells it is only re-pointed at the next cell's message, so a cell
costs no new thread and no JVM call. The controller (controller.py) calls this around each cell and
tells the cell, once, when a monitor's poll failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from pyspark_kernel.kernel.backends.base import Backend, Monitor
from pyspark_kernel.kernel.progress_display import Publisher
from pyspark_kernel.kernel.waitline import WaitLine
from pyspark_kernel.variables import ProgressMode

logger = logging.getLogger(__name__)


class SessionProgress:
    """The progress display of each cell, from the monitor of the session that cell runs in.

    ``publisher()`` gives a Publisher that addresses the running cell from another thread (the
    monitor's); ``mode`` is the kernelspec's PYSPARK_KERNEL_PROGRESS (full, bar or off), switched by
    %spark progress.
    """

    def __init__(self, backend: Backend, publisher: Callable[[], Publisher], mode: ProgressMode = "full") -> None:
        self.backend = backend
        self.publisher = publisher
        self.mode: ProgressMode = mode
        self._monitor: Monitor | None = None
        self._monitor_source: Any = None  # what the monitor follows (the SparkContext or Connect session)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

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
            self._monitor.ui = self._ui_root(spark)
        else:
            self._monitor.publish = self.publisher()
        self._monitor.full = self.mode == "full"
        return self._monitor

    def _ui_root(self, spark: Any) -> str | None:
        """The view's links, asked once a session; a session with no UI (or no answer) gets no links."""
        try:
            return self.backend.ui_root(spark)
        except Exception as error:  # links are a courtesy: the view stands without them
            logger.debug("the Spark UI's address is unknown: %s", error)
            return None


class RunningCell:
    """The running cell's Spark work: tagged (an interrupt cancels it) and followed by the progress display.

    Begun by the controller before the cell's code when the session is up; a cell that runs while the
    session starts waits for it inside a live line (waitline.py) and is followed from the moment it is up,
    so the first cell of a notebook shows its wait, then its jobs, like any later cell.
    """

    def __init__(self, session: Any, progress: SessionProgress, tell_once: Callable[[str, str], None]) -> None:
        self.session = session
        self.progress = progress
        self.tell_once = tell_once
        self.running = False  # between the controller's before_cell and after_cell
        self.followed = False  # this cell's work is tagged and its progress followed

    def begins(self) -> None:
        self.running, self.followed = True, False

    def ends(self) -> None:
        self.running = False

    def follow(self, spark: Any) -> Monitor | None:
        """Tag the cell's work in ``spark`` and begin its progress display."""
        self.followed = True
        try:
            tag = self.session.backend.cell_tag(spark)
        except Exception as error:  # the cell runs with no job group: an interrupt has nothing to cancel
            logger.warning("setting the cell's job group failed: %s", error, exc_info=True)
            self.tell_once("untagged", f"this cell's Spark jobs cannot be cancelled by an interrupt: {error}")
            return None
        return self.progress.begin(spark, tag)

    def wait_line(self) -> AbstractContextManager[object]:
        """A cell waiting for the session's start shows it live; outside a cell, or with progress off, nothing."""
        if not self.running or not self.progress.enabled:
            return nullcontext()
        return WaitLine(self.progress.publisher(), self.session.starter.started_at)

    def begin_late(self) -> None:
        """The session came up while the cell waited for it: its jobs get the tag and the view any cell gets."""
        spark = self.session.session
        if self.running and not self.followed and spark is not None and self.session.ready:
            try:
                self.follow(spark)
            except Exception as error:  # the cell's result must not depend on its progress display
                logger.warning("following the cell's Spark work failed: %s", error, exc_info=True)
