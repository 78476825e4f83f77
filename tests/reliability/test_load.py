"""Kernels started at once on a busy, shared machine: every one gets its session.

Under a burst, 2 of 16 kernels failed with "Spark could not create its SparkContext: Connection
refused". Their JVM had died inside SparkContext's constructor: a Spark UI binds ``spark.ui.port``
(4040) or one of the ``spark.port.maxRetries`` (16) ports after it, and when the UIs of the machine's
other kernels and Sparks hold all 17, ``SparkUI.bind`` calls ``System.exit(1)``. py4j then finds no
JVM ("Connection refused", or "reset" while it dies). Here listening sockets on 127.0.0.1 hold most of
that window, as the other UIs of a shared machine do (a real bind each, not a mock), two CPU burners
load the machine, and eight kernels start together.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import KernelHarness, start_together

from pyspark_kernel.kernel import jvm
from pyspark_kernel.kernel.settings import SessionSettings
from pyspark_kernel.ports import PORT_TRIES

KERNELS = 8
BURNERS = 2
BURNER_SECONDS = 900  # a burner ends by itself even if this test process is killed
UI_PORT = 4040  # Spark's default spark.ui.port, where a kernelspec without one starts its search
SPARK_DEFAULT_RETRIES = 16
LEFT_FREE = 2  # ports of the window left to the eight kernels: far fewer than they need


def hold_ports(first: int, count: int, left_free: int) -> list[socket.socket]:
    """Listening sockets on the free ports of ``first``..``first+count-1``, all but ``left_free`` of them."""
    held: list[socket.socket] = []
    for port in range(first, first + count):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind(("127.0.0.1", port))
            listener.listen()
        except OSError:  # already another program's: it stands in the way as well
            listener.close()
            continue
        held.append(listener)
    for listener in held[len(held) - left_free :]:
        listener.close()
    return held[: len(held) - left_free]


def start_burners(count: int, seconds: int) -> list[subprocess.Popen[bytes]]:
    """``count`` processes that keep a core busy for ``seconds`` at most."""
    loop = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]


def outcome(kernel: KernelHarness) -> str:
    """The count's text, or the error the cell showed instead."""
    result = kernel.run("spark.range(10).count()", timeout=600)
    for output in result["outputs"]:
        if output["type"] == "execute_result":
            return output["data"]["text/plain"]
        if output["type"] == "error":
            return f"{output['ename']}: {output['evalue'].splitlines()[0]}"
    return f"no result: {result['reply']}"


@pytest.fixture
def busy_machine() -> Iterator[list[int]]:
    """The window of Spark's default UI search mostly taken, and two cores kept busy; the burners' pids."""
    held = hold_ports(UI_PORT, SPARK_DEFAULT_RETRIES + 1, LEFT_FREE)
    burners = start_burners(BURNERS, BURNER_SECONDS)
    try:
        yield [burner.pid for burner in burners]
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
        for listener in held:
            listener.close()


@pytest.mark.slow
@pytest.mark.reliability
def test_eight_kernels_at_once_on_a_busy_machine_all_count(default_spec: Path, busy_machine: list[int]) -> None:
    kernels = start_together(default_spec.name, KERNELS)
    try:
        assert len(kernels) == KERNELS, f"only {len(kernels)} of {KERNELS} kernels became ready"
        results = [outcome(kernel) for kernel in kernels]
        assert results == ["10"] * KERNELS, f"{results.count('10')} of {KERNELS} counted: {results}"
    finally:
        for kernel in kernels:
            kernel.shutdown()


def test_the_ui_searches_as_far_as_the_kernels_own_port_pick() -> None:
    widened = f"spark.port.maxRetries={PORT_TRIES}"
    assert widened in SessionSettings().launch_submit_args({})
    mine = SessionSettings(submit_args="--conf spark.port.maxRetries=3 pyspark-shell").launch_submit_args({})
    assert "spark.port.maxRetries=3" in mine and widened not in mine
    cluster = SessionSettings(submit_args="--master yarn pyspark-shell").launch_submit_args({})
    assert "spark.port.maxRetries" not in cluster  # there the retries may be a firewall's port range


def test_a_jvm_ended_by_its_ui_bind_is_diagnosed(tmp_path: Path) -> None:
    log = tmp_path / "kernel-spark.log"
    stack = "\tat org.sparkproject.jetty.server.ServerConnector.open(ServerConnector.java:313)\n" * 40
    log.write_text(
        "ERROR SparkUI: Failed to bind SparkUI\n"
        "java.net.BindException: Failed to bind to /127.0.0.1:4056: Service 'SparkUI' failed after 16 retries (starting from 4040)!\n" + stack
    )
    cause, fix = jvm.diagnose(jvm.read_tail(log, jvm.DIAGNOSE_LINES))
    assert cause == "every port Spark tried for its UI was taken" and "spark.ui.port" in fix
