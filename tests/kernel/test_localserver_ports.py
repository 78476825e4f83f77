"""The shared server's start accepts only its own listener on the port pyspark picked for it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from pyspark_kernel.kernel.backends.localserver import listens_on

LISTENER = "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)"


def test_a_port_another_process_listens_on_is_not_the_servers() -> None:
    other = subprocess.Popen([sys.executable, "-c", LISTENER], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None
        port = int(other.stdout.readline())
        deadline = time.monotonic() + 10
        while not listens_on(other.pid, port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listens_on(other.pid, port), "the process that bound the port listens on it"
        assert not listens_on(os.getpid(), port), "a server process that did not bind it does not"
    finally:
        other.kill()
        other.wait()
