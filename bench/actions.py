"""What the bench's rows time: kernels started, cells run, interrupts sent. Each returns its seconds
(or facts), and stops what it started; bench/run.py decides what is compared with what."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import KernelHarness, java_processes_under, start_together  # noqa: E402

COUNT = "spark.range(10).count()"
LONG_JOB = "spark.range(0, 4_000_000_000, numPartitions=200).selectExpr('sum(sqrt(id))').collect()"
BARE = (
    "from pyspark.sql import SparkSession\nspark = SparkSession.builder.master('local[*]').getOrCreate()\nassert spark.range(10).count() == 10\nspark.stop()\n"
)


def start_and_info(name: str) -> float:
    """Seconds from start to the kernel_info reply (KernelHarness returns once it came); shutdown untimed."""
    started = time.perf_counter()
    kernel = KernelHarness(name)
    elapsed = time.perf_counter() - started
    kernel.shutdown()
    return elapsed


def start_and_count(name: str, code: str = COUNT, extra_env: dict[str, str] | None = None) -> float:
    """Seconds from start to the first count's result; shutdown untimed."""
    started = time.perf_counter()
    kernel = KernelHarness(name, extra_env)
    try:
        assert kernel.value(code) == "10"
        return time.perf_counter() - started
    finally:
        kernel.shutdown()


def bare_floor() -> None:
    subprocess.run([sys.executable, "-c", BARE], check=True, capture_output=True, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})


def timed_cell(kernel: KernelHarness, code: str) -> float:
    started = time.perf_counter()
    kernel.value(code)
    return time.perf_counter() - started


def interleaved_trips(kernels: dict[str, KernelHarness], count: int, first: int = 0) -> dict[str, float]:
    """``count`` cells of ``1+1`` on each kernel, alternating between them cell by cell (the side that goes
    first flips every cell pair, starting with ``kernels``' ``first``): seconds per kernel, summed over its
    own cells. A burst of the machine's other load lands on both sides' cells alike, where two back-to-back
    blocks of 200 cells (a second each) put it on one side only: such rounds read 0.92-1.53x."""
    seconds = dict.fromkeys(kernels, 0.0)
    names = list(kernels)
    for index in range(count):
        order = names if (index + first) % 2 == 0 else names[::-1]
        for name in order:
            started = time.perf_counter()
            kernels[name].value("1+1")
            seconds[name] += time.perf_counter() - started
    return seconds


def interrupt_latency(kernel: KernelHarness) -> tuple[float, bool]:
    """Seconds from the interrupt to the cell's reply, and whether the job was gone 15 s later."""
    msg_id = kernel.client.execute(LONG_JOB, stop_on_error=False)
    time.sleep(3)
    started = time.perf_counter()
    kernel.manager.interrupt_kernel()
    while kernel.client.get_shell_msg(timeout=120)["parent_header"].get("msg_id") != msg_id:
        pass
    latency = time.perf_counter() - started
    deadline = time.monotonic() + 15
    while (active := kernel.value("sc.statusTracker().getActiveJobsIds()") != "[]") and time.monotonic() < deadline:
        time.sleep(0.2)
    return latency, not active


def four_at_once(name: str) -> tuple[float, list[float], int]:
    """Seconds until 4 kernels started together have each counted, their RSS (kernel + JVM, MB), UI ports."""
    started = time.perf_counter()
    kernels = start_together(name, 4)
    try:
        for kernel in kernels:
            kernel.value(COUNT)
        ready = time.perf_counter() - started
        rss = [(psutil.Process(k.pid).memory_info().rss + sum(j.memory_info().rss for j in java_processes_under(k.pid))) / 2**20 for k in kernels]
        return ready, rss, len({kernel.value("sc.uiWebUrl").rsplit(":", 1)[1] for kernel in kernels})
    finally:
        for kernel in kernels:
            kernel.shutdown()


def idle_then_first(name: str, code: str, floors: list[float], idle: float = 10.0) -> float:
    """Open a notebook, read for ``idle`` s, run a first cell: its seconds. The same cell run again right
    after goes to ``floors``: no warm-up can make a first run faster than a second."""
    kernel = KernelHarness(name)
    try:
        time.sleep(idle)
        first = timed_cell(kernel, code)
        floors.append(timed_cell(kernel, code))
        return first
    finally:
        kernel.shutdown()
