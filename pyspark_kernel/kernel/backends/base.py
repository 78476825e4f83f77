"""The one interface both kinds of session implement: classic (py4j, classic.py) and Spark Connect
(connect.py). The session (session.py) and the controller (controller.py) talk only to this, so no
``if remote:`` branch lives outside the two implementations."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from pyspark_kernel.kernel.progress_display import Publisher
from pyspark_kernel.kernel.settings import SessionSettings


class Monitor(Protocol):
    """A cell's progress display (progress.py): begun and ended around each cell."""

    publish: Publisher  # where the display goes: re-pointed at each cell's parent message
    full: bool  # the job view (jobview.py) rather than the bars, from the next cell on
    ui: str | None  # the Spark UI's root for the job view's links

    def begin(self, tag: str) -> None: ...

    def end(self) -> None: ...

    def take_failure(self) -> BaseException | None:
        """The display's first failure, once; then None."""

    def close(self) -> None: ...


class Backend(Protocol):
    names: tuple[str, ...]  # what the user namespace gets: spark (and sc)
    remote: str | None  # the Spark Connect URL, or None for a local JVM
    warmable: bool  # whether idle time is worth spending on warming its first queries (warmup.py)
    defer_start: bool  # whether the start waits for the kernel's first answer (sessionstart.py)

    def live_session(self) -> Any:
        """The session pyspark holds now, or None (read from its class state, never imported for it)."""

    def create(self, overrides: dict[str, str], launched: Callable[[], bool]) -> Any:
        """Make (or join) the session; runs on the start thread."""

    def cell_tag(self, session: Any) -> str:
        """The job group or tag the running cell's work carries, set on first use."""

    def forget(self) -> None:
        """Drop the tag of a session that is gone."""

    def lost(self) -> str | None:
        """What the notebook lost, when a server the backend started died under its session (Connect's
        shared local server); None while it runs. Asked before each cell, so it makes no call to Spark."""

    def cancel_cell(self, in_jvm_call: bool) -> threading.Thread | None:
        """Cancel the running cell's work without blocking (called from a signal handler)."""

    def describe(self, session: Any) -> dict[str, str | None]:
        """version, master, app_id and the Spark UI link as the browser reaches it."""

    def status_lines(self, session: Any) -> list[str]: ...

    def set_log_level(self, session: Any, level: str) -> None: ...

    def progress_source(self, session: Any) -> Any:
        """What a progress monitor follows; a new one is made when this changes."""

    def progress_monitor(self, source: Any, publish: Publisher) -> Monitor: ...

    def ui_root(self, session: Any) -> str | None:
        """The Spark UI's root as the browser reaches it (settings.ui_root), for the job view's links; None without one."""

    def namespace(self, session: Any) -> dict[str, Any]:
        """The objects behind ``names``."""

    def adopt_notebook(self, session: Any, name: str | None, cwd: str) -> None:
        """A warm pool handed this running kernel to a notebook (pool.py): show the notebook's name where
        the session can still show it, and resolve relative paths against the notebook's folder."""


def backend_for(settings: SessionSettings, jvm_alive: Callable[[], bool]) -> Backend:
    """Spark Connect when the kernelspec names a server (SPARK_REMOTE), else a local JVM."""
    if settings.remote:
        from pyspark_kernel.kernel.backends.connect import ConnectBackend

        return ConnectBackend(settings)
    from pyspark_kernel.kernel.backends.classic import ClassicBackend

    return ClassicBackend(settings, jvm_alive)
