"""The starter of the shared local Spark Connect server: ``python -m pyspark_kernel.kernel.backends.localstarter``.

A process of its own, so that the server starts in its own working folder (localserver.py's
``server_cwd``) and not in the folder of whichever notebook's kernel happened to need it first: Spark
resolves every notebook's relative paths there. The kernel process runs it as soon as its shell is built
(prelaunch.py), so the server's JVM starts while the session's start imports pyspark, as a classic kernel's early JVM
does, and then warms the new server; a kernel whose server is gone runs it and waits (``--no-warm``).
"""

from __future__ import annotations

import os
import subprocess
import sys

from pyspark_kernel import localserver
from pyspark_kernel.errors import SparkStartError
from pyspark_kernel.kernel.backends.localserver import Joined, ensure


def run_starter(wait: bool) -> None:
    """Start the server from a process of its own, in the server's own working folder (localserver.py's
    ``server_cwd``): a server started from a kernel would resolve every notebook's relative paths against
    the folder of the notebook that happened to start it. ``wait``: block until it is up (no warm-up),
    raising SparkStartError with the starter's reason; else return at once (prelaunch.py)."""
    place = localserver.place_from(os.environ)
    command = [sys.executable, "-m", "pyspark_kernel.kernel.backends.localstarter", *([] if not wait else ["--no-warm"])]
    cwd = localserver.server_cwd(place)
    if not wait:
        subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        return
    result = subprocess.run(command, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SparkStartError(
            f"The local Spark Connect server did not start: {reason}",
            f"its log is in {place.log_dir}; `pyspark-kernel server stop` ends a server left half-started, then run the cell again.",
        )


def warm(joined: Joined) -> None:
    """The first queries of a new server are its slowest (its JIT and the Connect planner's classes are
    cold): run their shapes once, in a session of this process's own, while the kernel that started the
    server is still importing its client."""
    from pyspark.sql import SparkSession

    from pyspark_kernel.kernel import warmup

    session = SparkSession.builder.remote(joined.url).create()
    try:
        for name, query in warmup.QUERIES:
            if name != "udf":  # a Python worker's start would hold up the notebook's first cell
                query(session)
    finally:
        session.stop()


def main(argv: list[str]) -> int:
    """Make sure the server runs, and warm one this process started (``--no-warm``: a kernel waits for it)."""
    try:
        joined = ensure(localserver.place_from(os.environ), may_start=True)
        if joined.started_here and "--no-warm" not in argv:
            warm(joined)
    except Exception as error:  # the kernel's own start says why, in a cell
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
