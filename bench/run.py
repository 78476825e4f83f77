"""`make bench`: this kernel against plain ipykernel and bare pyspark, measured in the same run.

Eight rows, each the median (and min-max spread) of --reps repetitions, with the ratio to its baseline
and the target from the benchmarks issue. Results go to stdout and bench/results.md. Benchmarks are
never assertions in the test suite; tests/test_bench_smoke.py only checks that a --quick run prints.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import psutil  # noqa: E402

from conftest import KernelHarness, start_together, java_processes_under, running_connect_server  # noqa: E402

COUNT = "spark.range(10).count()"
JOB_200 = "spark.range(0, 20_000_000, numPartitions=200).selectExpr('sum(id)').first()[0]"
LONG_JOB = "spark.range(0, 4_000_000_000, numPartitions=200).selectExpr('sum(sqrt(id))').collect()"
BARE = (
    "from pyspark.sql import SparkSession\n"
    "spark = SparkSession.builder.master('local[*]').getOrCreate()\n"
    "assert spark.range(10).count() == 10\n"
    "spark.stop()\n"
)
FIRST_CELL = "from pyspark.sql import SparkSession\nspark = SparkSession.builder.master('local[*]').getOrCreate()\nspark.range(10).count()"


def install(prefix: Path, name: str, *args: str) -> str:
    subprocess.run([sys.executable, "-m", "pyspark_kernel", "install", "--prefix", str(prefix), "--name", name, "--replace", *args], check=True, capture_output=True)
    return name


def timed(action: Callable[[], object], reps: int) -> list[float]:
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def start_and_info(name: str) -> float:
    """Seconds from start to the kernel_info reply (KernelHarness returns once it came); shutdown untimed."""
    started = time.perf_counter()
    kernel = KernelHarness(name)
    elapsed = time.perf_counter() - started
    kernel.shutdown()
    return elapsed


def start_and_count(name: str, code: str = COUNT) -> Callable[[], None]:
    def run() -> None:
        kernel = KernelHarness(name)
        assert kernel.value(code) == "10"
        kernel.shutdown()

    return run


def bare_floor() -> None:
    subprocess.run([sys.executable, "-c", BARE], check=True, capture_output=True, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})


def round_trips(kernel: KernelHarness, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        kernel.value("1+1")
    return time.perf_counter() - started


def interrupt_latency(kernel: KernelHarness) -> float:
    msg_id = kernel.client.execute(LONG_JOB, stop_on_error=False)
    time.sleep(3)
    started = time.perf_counter()
    kernel.manager.interrupt_kernel()
    while True:
        reply = kernel.client.get_shell_msg(timeout=120)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    latency = time.perf_counter() - started
    deadline = time.monotonic() + 15
    while kernel.value("sc.statusTracker().getActiveJobsIds()") != "[]" and time.monotonic() < deadline:
        time.sleep(0.2)
    return latency


def four_at_once(name: str) -> tuple[float, list[float], int]:
    started = time.perf_counter()
    kernels = start_together(name, 4)
    try:
        for kernel in kernels:
            kernel.value(COUNT)
        ready = time.perf_counter() - started
        rss = [(psutil.Process(k.pid).memory_info().rss + sum(j.memory_info().rss for j in java_processes_under(k.pid))) / 2**20 for k in kernels]
        ports = {kernel.value("sc.uiWebUrl").rsplit(":", 1)[1] for kernel in kernels}
        return ready, rss, len(ports)
    finally:
        for kernel in kernels:
            kernel.shutdown()


def idle_then_first(name: str, code: str, idle: float = 10.0) -> float:
    """Open a notebook, read for ``idle`` seconds, then run a first cell: its seconds (row 8)."""
    kernel = KernelHarness(name)
    try:
        time.sleep(idle)
        started = time.perf_counter()
        kernel.value(code)
        return time.perf_counter() - started
    finally:
        kernel.shutdown()


FIRST_CELLS = (("count", COUNT), ("SQL collect", "spark.sql('SELECT 1 AS one').collect()"), ("pandas round trip", "spark.range(5).toPandas().shape"))


def in_one_kernel(ours: str, plain: str, prefix: Path, quick: bool, reps: int) -> list[tuple[str, str, str, str, str]]:
    """Rows 3-5, in one kernel of each kind kept up for all of them."""
    rows = []
    spark_kernel, plain_kernel = KernelHarness(ours), KernelHarness(plain)
    try:
        spark_kernel.value(COUNT)
        trips = 100 if quick else 200
        round_trips(spark_kernel, 20), round_trips(plain_kernel, 20)
        mine = [round_trips(spark_kernel, trips) for _ in range(reps)]
        base = [round_trips(plain_kernel, trips) for _ in range(reps)]
        rows.append((f"3 {trips} × `1+1`", stats(mine), f"plain ipykernel {stats(base)}", f"{statistics.median(mine) / statistics.median(base):.2f}×", "≤ 1.05×"))
        if not quick:
            quiet = KernelHarness(install(prefix, "bench-quiet", "--env", "PYSPARK_KERNEL_PROGRESS", "off"))
            try:
                quiet.value(COUNT)
                spark_kernel.value(JOB_200), quiet.value(JOB_200)
                on = timed(lambda: spark_kernel.value(JOB_200), reps + 2)
                off = timed(lambda: quiet.value(JOB_200), reps + 2)
            finally:
                quiet.shutdown()
            rows.append(("4 200-task job, progress on", stats(on), f"progress off {stats(off)}", f"{(statistics.median(on) / statistics.median(off) - 1) * 100:+.1f}%", "≤ +2%"))
            latency = [interrupt_latency(spark_kernel) for _ in range(reps)]
            rows.append(("5 interrupt → reply", stats(latency), "job cancelled, no active jobs after", "", "≤ 1.0 s"))
    finally:
        spark_kernel.shutdown()
        plain_kernel.shutdown()
    return rows


def stats(samples: list[float]) -> str:
    return f"{statistics.median(samples):.3f} s ({min(samples):.2f}-{max(samples):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="rows 1 and 3 only, 2 reps: a smoke run")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results.md")
    parser.add_argument("--only", type=int, nargs="*", help="only these rows (results.md is written by a full run only)")
    args = parser.parse_args()
    reps = 2 if args.quick else args.reps

    def want(row: int) -> bool:
        return not args.only or row in args.only

    rows: list[tuple[str, str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="pyspark-bench-") as root:
        for variable in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR"):
            os.environ[variable] = str(Path(root) / variable.lower())
        prefix = Path(root) / "prefix"
        os.environ["JUPYTER_PATH"] = str(prefix / "share" / "jupyter")
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", "bench-plain"], check=True, capture_output=True)
        ours = install(prefix, "bench-spark")  # with the class-data archive, as install makes it by default
        no_cds = install(prefix, "bench-nocds", "--no-cds")
        plain = "bench-plain"

        start_and_info(ours), start_and_info(plain)  # warm the disk cache for both
        if want(1):
            mine, base = [start_and_info(ours) for _ in range(reps)], [start_and_info(plain) for _ in range(reps)]
            rows.append(("1 start → kernel_info", stats(mine), f"plain ipykernel {stats(base)}", f"{statistics.median(mine) / statistics.median(base):.2f}×", "≤ 1.15×"))

        if not args.quick and want(2):
            without = timed(start_and_count(no_cds), reps)
            mine = timed(start_and_count(ours), reps)
            floor = timed(bare_floor, reps)
            first_cell = timed(start_and_count(plain, FIRST_CELL), reps)
            rows.append(("2 start → first count (--no-cds)", stats(without), f"bare python {stats(floor)}; ipykernel+first cell {stats(first_cell)}",
                         f"{statistics.median(without) / statistics.median(floor):.2f}× floor, {statistics.median(without) / statistics.median(first_cell):.2f}× first-cell", "≤ 1.05× floor"))
            rows.append(("2 start → first count (CDS, default)", stats(mine), f"bare python without CDS {stats(floor)}",
                         f"{statistics.median(mine) / statistics.median(floor):.2f}× floor", "≤ 0.6× floor"))

        if want(3) or want(4) or want(5):
            rows += in_one_kernel(ours, plain, prefix, args.quick, reps)

        if not args.quick and want(6):
            ready, rss, ports = four_at_once(ours)
            rows.append(("6 4 kernels at once", f"{ready:.1f} s to all counted", f"RSS kernel+JVM {min(rss):.0f}-{max(rss):.0f} MB each", f"{ports} distinct UI ports", "4 ports"))
        if not args.quick and want(7):
            with running_connect_server(Path(root) / "connect") as url:
                connect = install(prefix, "bench-connect", "--remote", url)
                mine, base = [start_and_info(connect) for _ in range(reps)], [start_and_info(plain) for _ in range(reps)]
            rows.append(("7 Connect kernel start → kernel_info", stats(mine), f"plain ipykernel {stats(base)}", f"{statistics.median(mine) / statistics.median(base):.2f}×", "no local JVM"))
        if not args.quick and want(8):
            warmed = install(prefix, "bench-warmup", "--env", "PYSPARK_KERNEL_WARMUP", "on")
            for label, code in FIRST_CELLS:
                warm = [idle_then_first(warmed, code) for _ in range(reps)]
                base = [idle_then_first(ours, code) for _ in range(reps)]
                target = "≤ 0.25 s" if label == "count" else ""
                rows.append((f"8 open → idle 10 s → first {label}", stats(warm), f"warm-up off {stats(base)}", f"{statistics.median(warm) / statistics.median(base):.2f}×", target))

    import pyspark

    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    lines = [
        "# Benchmarks", "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {os.cpu_count()} cores ({cpu}) · {psutil.virtual_memory().total / 2**30:.0f} GiB · "
        f"Python {platform.python_version()} · pyspark {pyspark.__version__} · {java} · medians of {reps} (min-max)", "",
        "| row | this kernel | baseline (same run) | ratio | target |", "| --- | --- | --- | --- | --- |",
        *[f"| {' | '.join(row)} |" for row in rows],
    ]
    print("\n".join(lines))
    if not args.quick and not args.only:
        args.output.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
