"""The warm kernel pool (install --pool N): real kernels started ahead by the provisioner, handed over at launch.

Each test launches kernels the way a Jupyter server does, through jupyter_client's KernelManager and the
provisioner in this process (the pool lives beside it), and checks what a notebook sees after the
hand-over, restart, culling and refill, and that nothing is left running.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from conftest import KernelHarness, install, wait_gone
from pyspark_kernel import pool as pool_module
from pyspark_kernel.pool import KernelPool

pytestmark = pytest.mark.slow
READY = 300  # seconds a pooled kernel may take to be started and warmed on a loaded 2-core machine


@pytest.fixture(autouse=True)
def no_pool_left() -> Iterator[None]:
    """Every test ends with no pooled kernel, and no process of one, left running."""
    yield
    kernels = [kernel for pool in pool_module.pools() for kernel in pool.idle]
    processes = [psutil.Process(kernel.pid) for kernel in kernels if psutil.pid_exists(kernel.pid)]
    processes += [psutil.Process(pid) for kernel in kernels for pid in kernel.jvms if psutil.pid_exists(pid)]
    pool_module.shutdown_all()
    assert wait_gone(processes, timeout=20) == []


def the_pool(kernel: KernelHarness) -> KernelPool:
    pool = kernel.manager.provisioner._pool  # type: ignore[union-attr]
    assert pool is not None, "a --pool kernelspec's provisioner has a pool"
    return pool


def ui_get(ui: str, path: str) -> bytes:
    """GET a page of the kernel's Spark UI as its owner: with the kernel's UI token when the UI has one."""
    from pyspark_kernel import uiauth

    token = uiauth.read_token(int(ui.rsplit(":", 1)[1]))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return urllib.request.urlopen(urllib.request.Request(f"{ui}{path}", headers=headers), timeout=30).read()


def family(pid: int) -> list[psutil.Process]:
    """The kernel process and everything under it (its JVM and Python workers)."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def test_hand_over_gives_the_notebook_its_folder_variables_and_name(prefix: Path, tmp_path: Path) -> None:
    spec = install(prefix, "--name", "pooled-handover", "--pool", "1", "--replace")
    notebook_dir = tmp_path / "project one"
    notebook_dir.mkdir()
    (notebook_dir / "data.csv").write_text("x\n1\n2\n")
    notebook = str(notebook_dir / "analysis.ipynb")

    first = KernelHarness(spec.name)  # the pool is empty: this one starts as usual, and the pool fills behind it
    try:
        pool = the_pool(first)
        assert first.value("spark.range(10).count()") == "10"
        assert pool.wait_ready(1, READY), "the pool filled one warm kernel"
        pooled = pool.idle[0]
        assert pooled.pid != first.pid
        assert pooled.memory_mb() > 100, "a pooled kernel holds its JVM"

        second = KernelHarness(spec.name, extra_env={"JPY_SESSION_NAME": notebook}, cwd=str(notebook_dir))
        try:
            assert second.pid == pooled.pid, "the launch took the pooled kernel"
            assert second.value("import os; os.getcwd()") == repr(str(notebook_dir))
            assert second.value("os.environ['JPY_SESSION_NAME']") == repr(notebook)
            assert second.value("os.environ['PYSPARK_KERNEL_ID']") == repr(second.manager.kernel_id)
            assert second.value("spark.read.csv('data.csv', header=True).count()") == "2", "relative paths are the notebook's"
            assert second.run("spark.range(3).write.parquet('out.parquet')")["reply"]["status"] == "ok"
            assert (notebook_dir / "out.parquet").is_dir()
            ui = second.value("sc.uiWebUrl").strip("'")
            page = ui_get(ui, "/jobs/").decode()
            assert f"{notebook} - Spark Jobs" in page, "the UI's title names the notebook"
            app_id = second.value("sc.applicationId").strip("'")
            jobs = json.loads(ui_get(ui, f"/api/v1/applications/{app_id}/jobs"))
            assert any(job.get("description") == notebook for job in jobs), [job.get("description") for job in jobs]
            assert pool.wait_ready(1, READY), "a hand-over refills the pool"
            assert len(pool.idle) == 1, "never more than N idle kernels"
        finally:
            second.shutdown()
    finally:
        first.shutdown()


def test_restart_takes_a_fresh_pooled_kernel(prefix: Path) -> None:
    spec = install(prefix, "--name", "pooled-restart", "--pool", "1", "--replace")
    kernel = KernelHarness(spec.name)
    try:
        pool = the_pool(kernel)
        assert pool.wait_ready(1, READY)
        assert kernel.run("x = 1")["reply"]["status"] == "ok"
        old = family(kernel.pid)
        waiting = pool.idle[0].pid
        kernel.manager.restart_kernel(now=False)
        # A pooled kernel listens on its own ports, so the restart changes them: jupyter_server then makes
        # new channels (MappingKernelManager.ports_changed, as for remote kernels); a client does the same.
        kernel.client.stop_channels()
        kernel.client = kernel.manager.client()
        kernel.client.start_channels()
        kernel.client.wait_for_ready(timeout=60)
        assert kernel.pid == waiting, "the restart took the pooled kernel"
        assert kernel.error("x")["ename"] == "NameError", "a restart is a fresh kernel"
        assert kernel.value("spark.range(10).count()") == "10"
        assert wait_gone(old, timeout=30) == [], "the old kernel and its JVM are gone"
    finally:
        kernel.shutdown()


def test_idle_pooled_kernels_are_culled_and_shutdown_refills(prefix: Path) -> None:
    spec = install(prefix, "--name", "pooled-cull", "--pool", "1", "--pool-idle-timeout", "4", "--replace")
    kernel = KernelHarness(spec.name)
    try:
        pool = the_pool(kernel)
        assert pool.wait_ready(1, READY)
        culled = family(pool.idle[0].pid)
        assert any("java" in process.name() for process in culled)
        assert wait_gone(culled, timeout=60) == [], "an unused pooled kernel is shut down after its idle timeout, JVM and all"
        assert pool.idle == []
        time.sleep(8)  # longer than the fill delay: a culled pool stays empty until a launch or a shutdown
        assert pool.idle == []
    finally:
        kernel.shutdown()
    assert pool.wait_ready(1, READY), "a shutdown refills the pool in the background"


BUSY_THEN_IDLE = """
import pathlib, sys, time
end = time.monotonic() + 4
while time.monotonic() < end:
    pass
pathlib.Path(sys.argv[1]).touch()
time.sleep(120)
"""


def test_the_pool_fills_only_once_the_launched_kernel_has_settled(tmp_path: Path) -> None:
    """wait_settled (which refill(after=pid) runs before the pool's first start) returns only once that
    process is quiet: a fill that began while the launched kernel started slowed it (bench row 9). A real
    process stands in for the kernel: busy for 4 s, then idle."""
    marker = tmp_path / "settled"
    busy = subprocess.Popen([sys.executable, "-c", BUSY_THEN_IDLE, str(marker)])
    try:
        pool_module.wait_settled(busy.pid, lambda: False, most=60)
        assert marker.exists(), "the pool would have started filling while the launched kernel was busy"
    finally:
        busy.kill()
        busy.wait()
    pool_module.wait_settled(busy.pid, lambda: True, most=60)  # gone: returns at once, nothing to wait for
