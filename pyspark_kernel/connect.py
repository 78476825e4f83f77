"""The Spark Connect backend: a session on a remote Spark Connect server (SPARK_REMOTE), no local JVM.

The other kind of session beside classic.py, behind the same interface (backend.py). A cell's
operations carry a tag instead of a job group; an interrupt asks the server to interrupt the tag;
progress comes from the client's progress handler instead of a status tracker.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from . import secrets, shared
from .errors import SparkStartError
from .progress import ConnectProgressMonitor, Publisher
from .settings import SessionSettings

DEFAULT_PORT = 15002
SERVER_FIX = "start the server (sbin/start-connect-server.sh), or correct --remote in the kernelspec."


def full_remote(remote: str, environ: dict[str, str] | None = None) -> str:
    """The server's URL with its secret parameters (``;token=…``), read from the kernelspec's 0600 file
    (secrets.py): built in this process for the client's builder, never put in an environment or argv."""
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    private_file = environ.get(secrets.PRIVATE_FILE_VAR)
    if not private_file:
        return remote
    try:
        stored = secrets.read_private(Path(private_file))
    except OSError as error:
        raise SparkStartError(
            f"Cannot read this kernelspec's secret file {private_file} ({error.strerror or error}); it holds the Spark Connect token.",
            "the file belongs to the account that installed the kernelspec: install your own with pyspark-kernel install --user --remote URL.",
        ) from None
    return secrets.join_remote(remote, secrets.remote_params(stored))


def check_reachable(remote: str, timeout: float = 5.0) -> None:
    """Fail in seconds, with the fix, when nothing listens at a Spark Connect URL: the client itself
    retries with back-off for minutes before it gives up."""
    url = urlparse(remote.replace("sc://", "http://", 1))
    host, port = url.hostname or "localhost", url.port or DEFAULT_PORT
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise SparkStartError(f"Nothing answers at the Spark Connect server {secrets.redact_remote(remote)} ({host}:{port}: {error.strerror or error}).", SERVER_FIX) from None


class ConnectBackend:
    """Operation tags per cell, interrupted on the server; progress from the client's handler."""

    names = ("spark",)  # a Connect session has no SparkContext
    warmable = False  # the server's JVM is warm from its other clients
    defer_start = True  # the client's imports (grpc, pyarrow, pandas) would hold up the kernel's first reply

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.remote = settings.remote
        self._tag: str | None = None
        self._session: Any = None  # the session the tag was added to
        self._interrupted: list[str] = []  # tags of interrupted cells, still on the main thread

    def live_session(self) -> Any:
        return shared.live_session(self.remote)

    def create(self, overrides: dict[str, str], launched: Callable[[], bool]) -> Any:
        check_reachable(self.remote or "")
        from pyspark.sql import SparkSession

        url = full_remote(self.remote or "")
        builder = SparkSession.builder.remote(url).appName(self.settings.app_name)
        for key, value in overrides.items():  # in-process, to the server: on no command line
            builder = builder.config(key, value)
        try:
            return builder.getOrCreate()
        except Exception as error:
            text = str(error)
            for value in [*secrets.split_remote(url)[1].values(), *secrets.split(overrides)[1].values()]:
                text = text.replace(value, secrets.mask(value)) if value else text
            raise SparkStartError(f"Could not connect to the Spark Connect server at {secrets.redact_remote(self.remote or '')}: {text}", SERVER_FIX) from None

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
        return {"version": session.version, "master": master, "app_id": getattr(session, "session_id", None), "ui": None}

    def status_lines(self, session: Any) -> list[str]:
        return [f"remote: {secrets.redact_remote(self.remote or '')}"]

    def set_log_level(self, session: Any, level: str) -> None:
        raise SparkStartError("A Spark Connect kernel has no local JVM whose log level could be set.", "set the level in the Connect server's log4j2 configuration.")

    def progress_source(self, session: Any) -> Any:
        return session

    def progress_monitor(self, source: Any, publish: Publisher) -> ConnectProgressMonitor:
        return ConnectProgressMonitor(source, publish)

    def adopt_notebook(self, session: Any, name: str | None, cwd: str) -> None:
        """Nothing to carry over: the server names its application and resolves its own paths."""

    def namespace(self, session: Any) -> dict[str, Any]:
        return {"spark": session}