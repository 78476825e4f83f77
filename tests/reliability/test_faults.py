"""Faults a notebook kernel meets over days: restarts, kills, failed starts, crowds, interrupt storms.

Counts are smaller than `make soak` (bench/soak.py), which runs the same cycles at full size, so
that CI stays within its time: 5 restart cycles here, 20 there.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from conftest import KernelHarness, java_processes_under, start_together, wait_gone

from reliability.probes import restart_cycles

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

CI_CYCLES = int(os.environ.get("PYSPARK_KERNEL_TEST_CYCLES", "5"))
LONG_JOB = "spark.range(0, 4_000_000_000, numPartitions=200).selectExpr('sum(sqrt(id))').collect()"


def test_restart_cycles_leak_nothing(default_spec: Path) -> None:
    kernel = KernelHarness(default_spec.name)
    try:
        samples, leftovers = restart_cycles(kernel, CI_CYCLES)
        last_jvms = java_processes_under(kernel.pid)
    finally:
        kernel.shutdown()
    assert all(sample.job_ok for sample in samples), samples
    assert leftovers == [], f"JVMs outlived their kernel's restart by 10 s: {leftovers}"
    assert wait_gone(last_jvms, timeout=15) == []
    first, rest = samples[1], samples[2:]  # cycle 0 is the very first process; compare restarted ones
    for later in rest:
        assert later.open_files <= first.open_files + 10, (first, later)
        assert later.threads <= first.threads + 10, (first, later)


def test_sigkilled_kernel_takes_its_jvm_with_it(default_spec: Path) -> None:
    kernel = KernelHarness(default_spec.name)
    kernel.value("spark.range(10).count()")
    jvms = kernel.java_children()
    assert jvms
    os.kill(kernel.pid, signal.SIGKILL)  # as the OOM killer or a crashed server would
    try:
        assert wait_gone(jvms, timeout=15) == [], "an orphan JVM kept memory and ports after its kernel was killed"
    finally:
        kernel.client.stop_channels()
        kernel.manager.cleanup_resources()


def test_jvm_killed_during_a_job(default_spec: Path) -> None:
    kernel = KernelHarness(default_spec.name)
    try:
        kernel.run("kept = [1, 2, 3]")
        kernel.value("spark.range(1).count()")
        msg_id = kernel.client.execute(LONG_JOB, stop_on_error=False)
        time.sleep(3)
        for jvm in kernel.java_children():
            jvm.kill()
        deadline = time.monotonic() + 60
        error = None
        while error is None and time.monotonic() < deadline:
            message = kernel.client.get_iopub_msg(timeout=60)
            if message["parent_header"].get("msg_id") == msg_id and message["msg_type"] == "error":
                error = message["content"]
        assert error is not None and error["ename"] == "SparkJVMGone" and "%spark restart" in error["evalue"]
        kernel.run("%spark restart")
        assert kernel.value("kept, spark.range(3).count()") == "([1, 2, 3], 3)"
    finally:
        kernel.shutdown()


def test_four_kernels_at_once_and_an_interrupt_in_one_cancels_nothing_elsewhere(default_spec: Path) -> None:
    kernels = start_together(default_spec.name, 4)
    try:
        assert len(kernels) == 4
        for kernel in kernels:
            kernel.value("spark.range(1).count()")
        facts = [kernel.value("sc.uiWebUrl, sc.applicationId") for kernel in kernels]
        assert len(set(facts)) == 4 and len({fact.split("'")[1].rsplit(":", 1)[1] for fact in facts}) == 4, facts
        # Jobs in all four at once; interrupt the first; the other three finish with the right result.
        job = "spark.range(0, 40_000_000, numPartitions=16).selectExpr('sum(id % 3)').first()[0]"
        ids = [kernel.client.execute(LONG_JOB if index == 0 else job, stop_on_error=False) for index, kernel in enumerate(kernels)]
        time.sleep(3)
        kernels[0].manager.interrupt_kernel()
        for index, (kernel, msg_id) in enumerate(zip(kernels, ids, strict=False)):
            reply = kernel.client.get_shell_msg(timeout=300)
            while reply["parent_header"].get("msg_id") != msg_id:
                reply = kernel.client.get_shell_msg(timeout=300)
            if index == 0:
                assert reply["content"]["ename"] == "KeyboardInterrupt"
            else:
                assert reply["content"]["status"] == "ok", reply["content"]
        assert [kernel.value("spark.range(0, 40_000_000, numPartitions=16).selectExpr('sum(id % 3)').first()[0]") for kernel in kernels[1:]] == ["39999999"] * 3
    finally:
        for kernel in kernels:
            kernel.shutdown()


def test_ten_interrupts_in_five_seconds(default_spec: Path) -> None:
    kernel = KernelHarness(default_spec.name)
    try:
        kernel.value("spark.range(1).count()")
        kernel.client.execute(LONG_JOB, stop_on_error=False)
        time.sleep(1)
        for _ in range(10):
            kernel.manager.interrupt_kernel()
            time.sleep(0.5)
        time.sleep(1)
        assert kernel.value("spark.range(7).count()") == "7"
        deadline = time.monotonic() + 15
        while kernel.value("sc.statusTracker().getActiveJobsIds()") != "[]" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert kernel.value("sc.statusTracker().getActiveJobsIds()") == "[]"
        kernel.client.kernel_info(reply=True, timeout=10)
    finally:
        kernel.shutdown()


def control_kernel_info(kernel: KernelHarness, timeout: float = 10) -> float:
    """Ask kernel_info on the control channel, which ipykernel serves while a cell runs; seconds taken."""
    message = kernel.client.session.msg("kernel_info_request")
    started = time.monotonic()
    kernel.client.control_channel.send(message)
    while True:
        reply = kernel.client.control_channel.get_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == message["header"]["msg_id"]:
            return time.monotonic() - started


def test_ten_thousand_task_job_throttles_progress_and_stays_responsive(default_spec: Path) -> None:
    kernel = KernelHarness(default_spec.name)
    try:
        kernel.value("spark.range(1).count()")
        rss_before = psutil.Process(kernel.pid).memory_info().rss
        msg_id = kernel.client.execute("spark.range(0, 1_000_000, numPartitions=10_000).selectExpr('sum(id)').first()[0]")
        answered = []
        updates = 0
        started = time.monotonic()
        while True:
            if not answered and time.monotonic() - started > 3:
                answered.append(control_kernel_info(kernel))
            message = kernel.client.get_iopub_msg(timeout=600)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            if message["msg_type"] in ("display_data", "update_display_data"):
                updates += 1
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
        elapsed = time.monotonic() - started
        assert answered, "kernel_info was not answered while the job ran"
        assert 1 <= updates <= elapsed / 0.5 + 3, (updates, elapsed)  # at most two updates a second
        growth_mb = (psutil.Process(kernel.pid).memory_info().rss - rss_before) / 2**20
        assert growth_mb < 200, f"the kernel grew by {growth_mb:.0f} MB over a 10,000-task job"
    finally:
        kernel.shutdown()
