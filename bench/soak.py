"""`make soak`: the reliability cycles at full size, written as a table to bench/soak.md.

20 restart cycles of one kernel (job right, old JVM gone, open files / threads / RSS per cycle) and 4
kernels started together running jobs at once; then a search for orphaned JVMs of those kernels.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import psutil  # noqa: E402
from conftest import KernelHarness, java_processes_under, start_together, wait_gone  # noqa: E402
from reliability.probes import restart_cycles  # noqa: E402


def install_kernelspec(prefix: Path) -> str:
    subprocess.run([sys.executable, "-m", "pyspark_kernel", "install", "--prefix", str(prefix), "--name", "soak", "--replace"], check=True, capture_output=True)
    os.environ["JUPYTER_PATH"] = str(prefix / "share" / "jupyter")
    return "soak"


def four_at_once(name: str) -> tuple[list[str], list[psutil.Process], float]:
    started = time.monotonic()
    kernels = start_together(name, 4)
    jvms: list[psutil.Process] = []
    rows = []
    try:
        results = [kernel.value("spark.range(0, 20_000_000, numPartitions=8).selectExpr('sum(id % 3)').first()[0]") for kernel in kernels]
        ready = time.monotonic() - started
        for kernel, result in zip(kernels, results, strict=False):
            children = java_processes_under(kernel.pid)
            jvms += children
            rss = (psutil.Process(kernel.pid).memory_info().rss + sum(jvm.memory_info().rss for jvm in children)) / 2**20
            ui = kernel.value("sc.uiWebUrl").strip("'")
            rows.append(f"| {kernel.pid} | {ui} | {result == '19999999'} | {rss:.0f} |")
    finally:
        for kernel in kernels:
            kernel.shutdown()
    return rows, wait_gone(jvms, timeout=15), ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "soak.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyspark-soak-") as root:
        for variable in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR"):
            os.environ[variable] = str(Path(root) / variable.lower())
        name = install_kernelspec(Path(root) / "prefix")
        kernel = KernelHarness(name)
        try:
            samples, leftovers = restart_cycles(kernel, args.cycles)
            last = java_processes_under(kernel.pid)
        finally:
            kernel.shutdown()
        leftovers += wait_gone(last, timeout=15)
        crowd, crowd_orphans, crowd_ready = four_at_once(name)
    orphans = len(leftovers) + len(crowd_orphans)
    growth_files = samples[-1].open_files - samples[1].open_files
    growth_threads = samples[-1].threads - samples[1].threads
    lines = [
        "# Soak: restart cycles and four kernels at once",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {platform.node()} · {os.cpu_count()} cores · "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB · Python {platform.python_version()}",
        "",
        f"{args.cycles} cycles of start → job → `restart_kernel()`; jobs right: {sum(s.job_ok for s in samples)}/{len(samples)}; "
        f"orphaned JVMs: {orphans}; open files cycle 1 → {args.cycles}: {growth_files:+d}; threads: {growth_threads:+d}.",
        "",
        "| cycle | kernel pid | open files | threads | kernel RSS MB | JVM RSS MB | job right | old JVM gone after s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in samples:
        gone = "-" if s.cycle == 0 else (f"{s.old_jvm_gone_s:.1f}" if s.old_jvm_gone_s is not None else "NOT GONE")
        lines.append(f"| {s.cycle} | {s.kernel_pid} | {s.open_files} | {s.threads} | {s.kernel_rss_mb:.0f} | {s.jvm_rss_mb:.0f} | {s.job_ok} | {gone} |")
    lines += [
        "",
        f"Four kernels started together, each running a job: all answered in {crowd_ready:.1f} s.",
        "",
        "| kernel pid | Spark UI | job right | RSS kernel + JVM MB |",
        "| --- | --- | --- | --- |",
        *crowd,
        "",
        f"Faults survived: {args.cycles} restarts, 4 concurrent kernels. Orphans found: {orphans}.",
    ]
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    sys.exit(1 if orphans else 0)


if __name__ == "__main__":
    main()
