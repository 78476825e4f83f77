"""The Spark Connect backend: a session on a remote Spark Connect server (SPARK_REMOTE), no local JVM.

The other kind of session beside classic.py, behind the same interface (base.py). A cell's
operations carry a tag instead of a job group; an interrupt asks the server to interrupt the tag;
progress comes from the client's progress handler instead of a status tracker.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

from pyspark_kernel import localserver, notebookconf, secrets
from pyspark_kernel.errors import SparkStartError
from pyspark_kernel.kernel import pyspark_hooks
from pyspark_kernel.kernel.progress_connect import ConnectProgressMonitor
from pyspark_kernel.kernel.progress_display import Publisher
from pyspark_kernel.kernel.settings import SessionSettings
from pyspark_kernel.remote import SERVER_FIX, check_reachable, full_remote


class ConnectBackend:
    """Operation tags per cell, interrupted on the server; progress from the client's handler."""

    names: tuple[str, ...] = ("spark",)  # a Connect session has no SparkContext
    warmable = False  # the server's JVM is warm from its other clients
    defer_start = True  # the client's imports (grpc, pyarrow, pandas) would hold up the kernel's first reply

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.remote = settings.remote
        self._tag: str | None = None
        self._session: Any = None  # the session the tag was added to
        self._interrupted: list[str] = []  # tags of interrupted cells, still on the main thread
        self.shared: Any = None  # a shared local server (localserver.py), as this kernel uses it (backends/localserver.py)
        if localserver.is_local_remote(self.remote):
            from pyspark_kernel.kernel.backends.localserver import SharedServer

            self.shared = SharedServer(settings)
            self.defer_start = False

    def live_session(self) -> Any:
        return pyspark_hooks.live_session(self.remote)

    def create(self, overrides: dict[str, str], launched: Callable[[], bool]) -> Any:
        if self.shared is not None:
            url = self.shared.join()
        else:
            check_reachable(self.remote or "")
            url = full_remote(self.remote or "")
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.remote(url).appName(self.settings.app_name)
        for key, value in {**notebookconf.DISPLAY_DEFAULTS, **overrides}.items():  # in-process, to the server: on no command line
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as error:
            text = str(error)
            for value in [*secrets.split_remote(url)[1].values(), *secrets.split(overrides)[1].values()]:
                text = text.replace(value, secrets.mask(value)) if value else text
            raise SparkStartError(f"Could not connect to the Spark Connect server at {self.where()}: {text}", SERVER_FIX) from None
        if self.shared is not None:
            self.shared.fail_fast(session)
        return session

    def lost(self) -> str | None:
        return self.shared.lost() if self.shared is not None else None

    def where(self) -> str:
        return f"the local server of {self.remote}" if self.shared is not None else secrets.redact_remote(self.remote or "")

    def cell_tag(self, session: Any) -> str:
        """The calling thread's operation tag, added on first use and again when the session changes.

        Tags are per thread in the client, so the tags of interrupted cells are removed here, on the
        thread that runs cells, not by the thread that interrupted them.
        """
        if self._tag is None or self._session is not session:
            tag = f"pyspark-kernel-{uuid.uuid4().hex[:12]}"
            while self._interrupted:
                session.removeTag(self._interrupted.pop())
            session.addTag(tag)
            self._tag, self._session = tag, session
        return self._tag

    def forget(self) -> None:
        self._tag = self._session = None

    def cancel_cell(self, in_jvm_call: bool) -> threading.Thread | None:
        """Interrupt the running cell's operations on the server, from a thread of its own."""
        tag, session = self._tag, self._session
        if tag is None or session is None:
            return None
        self._tag = None
        self._interrupted.append(tag)

        def interrupt() -> None:
            try:
                session.interruptTag(tag)
            except Exception:
                pass  # a server that is gone has nothing left to cancel

        thread = threading.Thread(target=interrupt, name="pyspark-kernel-cancel", daemon=True)
        thread.start()
        return thread

    def describe(self, session: Any) -> dict[str, str | None]:
        master = secrets.redact_remote(self.remote or os.environ.get("SPARK_REMOTE") or "")
        facts: dict[str, str | None] = {"version": session.version, "master": master, "app_id": getattr(session, "session_id", None), "ui": None}
        return self.shared.describe(facts) if self.shared is not None else facts

    def status_lines(self, session: Any) -> list[str]:
        if self.shared is not None:
            lines: list[str] = self.shared.status_lines(self.remote)
            return lines
        return [f"remote: {secrets.redact_remote(self.remote or '')}"]

    def set_log_level(self, session: Any, level: str) -> None:
        raise SparkStartError(
            "A Spark Connect kernel has no local JVM whose log level could be set.", "set the level in the Connect server's log4j2 configuration."
        )

    def progress_source(self, session: Any) -> Any:
        return session

    def progress_monitor(self, source: Any, publish: Publisher) -> ConnectProgressMonitor:
        return ConnectProgressMonitor(source, publish)

    def ui_root(self, session: Any) -> str | None:
        """The shared local server's UI; a remote server's UI is not this kernel's to know."""
        return self.shared.ui_root() if self.shared is not None else None

    def adopt_notebook(self, session: Any, name: str | None, cwd: str) -> None:
        """Nothing to carry over: the server names its application and resolves its own paths."""

    def namespace(self, session: Any) -> dict[str, Any]:
        return {"spark": session}
