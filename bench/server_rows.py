"""Bench rows 10-12: the shared local Spark Connect server (install --remote 'local[*]') against classic kernels.

- row 10: six notebooks open, each has counted: the memory of the six kernels and every JVM they use
  (classic: six kernels and their six driver JVMs; shared: six kernels and the one server JVM), as
  RSS and as PSS, since RSS counts the pages processes share (the JVMs' class-data archive, Python's
  libraries) once per process. Goal: at most 40% of six classic kernels.
- row 11: with the server up (another notebook holds it), a new notebook's launch -> first count, no
  pool, against a classic kernel's launch -> first count. Goal: 1.0 s.
- row 12: the first notebook's start -> first count, which must start the server (stopped before each
  round), against a classic kernel's in the same rounds. Goal: at most 1.2x.

The servers live in a TMPDIR of the run's own: pyspark keeps a user's servers under <tmp>/spark-connect-<user>,
and `pyspark-kernel server stop` stops all of them, which would stop another run's (or a test's) server
of the same account. Every server the rows start is stopped with `pyspark-kernel server stop`, then
checked gone by its pid (and killed if it is not, which the row then reports as a failure).
"""

from __future__ import annotations

import getpass
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import psutil
from actions import COUNT, start_and_count
from conftest import KernelHarness, java_processes_under
from measure import Line, paired, ratio_line, spread
from pool_row import quiet_machine

ROW_10_LIMIT = 0.40  # × six classic kernels' memory
ROW_11_LIMIT = 1.0  # s, launch -> first count with the server up
ROW_12_LIMIT = 1.2  # × a classic kernel's start -> first count
NOTEBOOKS = 6
SETTLE_SECONDS = 10.0  # after the last count, before memory is read: warm-ups and JIT settle
STOP_WAIT_SECONDS = 30.0


class Servers:
    """The run's own folder of shared servers (through TMPDIR), the kernelspec that uses it, and its stop."""

    def __init__(self, bench: Any) -> None:
        self.tmp = bench.root / "servers-tmp"
        self.tmp.mkdir(mode=0o700, exist_ok=True)
        self.env = {"TMPDIR": str(self.tmp)}
        self.spec = bench.spec("shared", "--remote", "local[*]")

    def running(self) -> list[psutil.Process]:
        """The server processes named by the discovery files of the run's folder that still run."""
        found = []
        for discovery in (self.tmp / f"spark-connect-{getpass.getuser()}").glob("pyspark-kernel-*/connect-local.json"):
            try:
                pid = json.loads(discovery.read_text()).get("pid")
                if isinstance(pid, int):
                    found.append(psutil.Process(pid))
            except (OSError, ValueError, psutil.Error):
                continue
        return [process for process in found if process.is_running() and process.status() != psutil.STATUS_ZOMBIE]

    def stop(self) -> None:
        """``pyspark-kernel server stop``, then each server checked gone by pid; raises if one had to be killed."""
        before = self.running()
        subprocess.run(
            [sys.executable, "-m", "pyspark_kernel", "server", "stop"], env={**os.environ, **self.env}, capture_output=True, timeout=120, check=False
        )
        _, alive = psutil.wait_procs(before, timeout=STOP_WAIT_SECONDS)
        for process in alive:
            process.kill()
        if alive:
            raise RuntimeError(f"`pyspark-kernel server stop` left server pid(s) {[process.pid for process in alive]} running (killed)")

    def kernel(self) -> KernelHarness:
        return KernelHarness(self.spec, self.env)

    def start_and_count(self) -> float:
        return start_and_count(self.spec, extra_env=self.env)


def memory_mb(processes: list[psutil.Process]) -> tuple[float, float]:
    """(RSS, PSS) of ``processes`` together, in MB."""
    rss = pss = 0.0
    for process in processes:
        full = process.memory_full_info()
        rss, pss = rss + full.rss, pss + full.pss
    return rss / 2**20, pss / 2**20


def six_counted(open_kernel: Any, jvms_of: Any) -> tuple[float, float, int]:
    """Open NOTEBOOKS kernels one after another, each counts; after SETTLE_SECONDS, the (RSS, PSS) of the
    kernels plus ``jvms_of(kernels)``, and how many JVMs that was. The kernels are shut down after."""
    kernels: list[KernelHarness] = []
    try:
        for _ in range(NOTEBOOKS):
            kernels.append(open_kernel())
            assert kernels[-1].value(COUNT) == "10"
        time.sleep(SETTLE_SECONDS)
        jvms = jvms_of(kernels)
        rss, pss = memory_mb([psutil.Process(kernel.pid) for kernel in kernels] + jvms)
        return rss, pss, len(jvms)
    finally:
        for kernel in kernels:
            kernel.shutdown()


def row_10(bench: Any) -> list[Line]:
    servers = Servers(bench)
    classic = bench.spec("spark")
    memory: dict[str, list[tuple[float, float, int]]] = {"classic": [], "shared": []}

    def classic_side() -> float:
        memory["classic"].append(six_counted(lambda: KernelHarness(classic), lambda kernels: [jvm for k in kernels for jvm in java_processes_under(k.pid)]))
        return 0.0

    def shared_side() -> float:
        servers.stop()
        try:
            memory["shared"].append(six_counted(servers.kernel, lambda kernels: servers.running()))
        finally:
            servers.stop()
        return 0.0

    paired({"classic": classic_side, "shared": shared_side}, max(1, bench.reps // 2), bench.progress)
    (c_rss, c_pss, c_jvms), (s_rss, s_pss, s_jvms) = (
        tuple(statistics.median(values) for values in zip(*memory[side], strict=True)) for side in ("classic", "shared")
    )
    line = Line("10 six notebooks open, each counted: memory", [s_rss], "", variant="memory")
    line.mine_text = f"shared server: {s_rss:,.0f} MB RSS, {s_pss:,.0f} MB PSS ({NOTEBOOKS} kernels + {s_jvms:.0f} server JVM)"
    line.baseline = f"six classic kernels: {c_rss:,.0f} MB RSS, {c_pss:,.0f} MB PSS ({NOTEBOOKS} kernels + {c_jvms:.0f} JVMs)"
    line.ratio = s_rss / c_rss
    line.ratio_text = f"{line.ratio:.2f}× RSS, {s_pss / c_pss:.2f}× PSS (median of {len(memory['shared'])} runs)"
    line.facts["pss_ratio"] = s_pss / c_pss
    return [line]


def row_10_verdict(line: Line) -> str:
    assert line.ratio is not None
    return "met" if line.ratio <= ROW_10_LIMIT else f"MISSED ({line.ratio:.2f}× > {ROW_10_LIMIT}× six classic kernels' RSS; PSS {line.facts['pss_ratio']:.2f}×)"


def row_11(bench: Any) -> list[Line]:
    servers = Servers(bench)
    classic = bench.spec("spark")
    servers.stop()
    holder = servers.kernel()  # the notebook already open: it started the server and keeps it leased
    try:
        assert holder.value(COUNT) == "10"

        def shared() -> float:
            quiet_machine()
            return servers.start_and_count()

        def none() -> float:
            quiet_machine()
            return start_and_count(classic)

        shared()  # the first client of a new server pays its first query's compilation once
        samples = paired({"shared": shared, "classic": none}, bench.reps, bench.progress)
    finally:
        holder.shutdown()
        servers.stop()
    line = Line("11 server up: launch → first count, no pool", samples["shared"], f"classic kernel, no pool {spread(samples['classic'])}", variant="warm")
    line.ratio = statistics.median(samples["shared"]) / statistics.median(samples["classic"])
    line.ratio_text = f"{line.ratio:.2f}× classic"
    return [line]


def row_11_verdict(line: Line) -> str:
    return "met" if line.median <= ROW_11_LIMIT else f"MISSED ({line.median:.2f} s > {ROW_11_LIMIT} s)"


def row_12(bench: Any) -> list[Line]:
    servers = Servers(bench)
    classic = bench.spec("spark")

    def first_notebook() -> float:
        servers.stop()  # this notebook must start the server
        quiet_machine()
        try:
            return servers.start_and_count()
        finally:
            servers.stop()  # its JVM's warm-up would land in the classic side's round

    def classic_kernel() -> float:
        quiet_machine()
        return start_and_count(classic)

    try:
        samples = paired({"shared": first_notebook, "classic": classic_kernel}, bench.reps, bench.progress)
    finally:
        servers.stop()
    return [ratio_line("12 first notebook starts the server: start → first count", samples["shared"], samples["classic"], "classic kernel")]


def row_12_verdict(line: Line) -> str:
    assert line.ratio is not None
    return "met" if line.ratio <= ROW_12_LIMIT else f"MISSED ({line.ratio:.2f}× > {ROW_12_LIMIT}× a classic kernel)"


__all__ = ["ROW_10_LIMIT", "ROW_11_LIMIT", "ROW_12_LIMIT", "row_10", "row_10_verdict", "row_11", "row_11_verdict", "row_12", "row_12_verdict"]
