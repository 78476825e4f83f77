"""Measurements shared by the reliability tests and `make soak` (bench/soak.py): what a kernel holds."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil
from conftest import KernelHarness, java_processes_under, wait_gone


@dataclass(frozen=True)
class CycleSample:
    cycle: int
    kernel_pid: int
    open_files: int  # file descriptors of the kernel process
    threads: int  # threads of the kernel process
    kernel_rss_mb: float
    jvm_rss_mb: float
    job_ok: bool
    old_jvm_gone_s: float | None  # how long the previous cycle's JVM took to exit


def sample(kernel: KernelHarness, cycle: int, old_jvm_gone_s: float | None) -> CycleSample:
    """Run a job in ``kernel`` and read what its process and JVM hold afterwards."""
    job_ok = kernel.value("spark.range(0, 100_000, numPartitions=8).selectExpr('sum(id)').first()[0]") == "4999950000"
    process = psutil.Process(kernel.pid)
    jvms = java_processes_under(kernel.pid)
    return CycleSample(
        cycle=cycle,
        kernel_pid=kernel.pid,
        open_files=process.num_fds(),
        threads=process.num_threads(),
        kernel_rss_mb=process.memory_info().rss / 2**20,
        jvm_rss_mb=sum(jvm.memory_info().rss for jvm in jvms) / 2**20,
        job_ok=job_ok,
        old_jvm_gone_s=old_jvm_gone_s,
    )


def restart_cycles(kernel: KernelHarness, cycles: int) -> tuple[list[CycleSample], list[psutil.Process]]:
    """start -> job -> restart_kernel(), ``cycles`` times; returns the samples and JVMs still alive."""
    samples = [sample(kernel, 0, None)]
    leftovers: list[psutil.Process] = []
    for cycle in range(1, cycles + 1):
        old_jvms = java_processes_under(kernel.pid)
        started = time.monotonic()
        kernel.manager.restart_kernel(now=False)
        kernel.client.wait_for_ready(timeout=60)
        alive = wait_gone(old_jvms, timeout=10)
        leftovers += alive
        samples.append(sample(kernel, cycle, None if alive else time.monotonic() - started))
    return samples, leftovers
