"""A Spark Connect URL (``--remote``, SPARK_REMOTE): its secret parameters put back, its server reached.

Shared by the kernel's Connect backend (kernel/backends/connect.py), which makes the session, and by
``pyspark-kernel check`` (cli/doctor/connect.py), which asks the same question in the same words.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from pyspark_kernel import secrets
from pyspark_kernel.errors import SparkStartError

DEFAULT_PORT = 15002
SERVER_FIX = "start the server (sbin/start-connect-server.sh), or correct --remote in the kernelspec."


def full_remote(remote: str, environ: dict[str, str] | None = None) -> str:
    """The server's URL with its secret parameters (``;token=…``), read from the kernelspec's 0600 file
    (secrets.py): built in this process for the client's builder, never put in an environment or argv."""
    variables: Mapping[str, str] = os.environ if environ is None else environ
    private_file = variables.get(secrets.PRIVATE_FILE_VAR)
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
        raise SparkStartError(
            f"Nothing answers at the Spark Connect server {secrets.redact_remote(remote)} ({host}:{port}: {error.strerror or error}).", SERVER_FIX
        ) from None
