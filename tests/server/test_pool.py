"""The warm kernel pool (install --pool N): real kernels started ahead by the provisioner, handed over at launch.

Each test launches kernels the way a Jupyter server does, through jupyter_client's KernelManager and the
provisioner in this process (the pool lives beside it), and checks what a notebook sees after the
hand-over, restart, culling and refill, and that nothing is left running; then the pool's bad moments:
encrypted channels (a second local account listens), the server-wide cap on idle kernels, a launch
cancelled mid-hand-over, and pooled kernels that fail to start and recover after a backoff.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import KernelHarness, install, spied_frames, wait_gone
from jupyter_client.manager import AsyncKernelManager

from pyspark_kernel.server import pool as pool_module
from pyspark_kernel.server import pooledkernel
from pyspark_kernel.server.pool import KernelPool

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
    from pyspark_kernel.kernel import uiprotect

    token = uiprotect.read_token(int(ui.rsplit(":", 1)[1]))
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
        assert pool.idle == [] and not pool.filling
        # A culled pool stays empty until a launch or a shutdown: no refill starts, however long it waits
        # (refill() starts its filler at once, so a few rounds of the keeper, which culls, are enough).
        time.sleep(3)
        assert pool.idle == [] and not pool.filling, "the pool refilled itself after a cull"
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
        started = time.monotonic()
        pooledkernel.wait_settled(busy.pid, lambda: True, most=30)
        assert time.monotonic() - started < 1 and not marker.exists(), "a closed pool waits for nothing, even for a busy kernel"
        started = time.monotonic()
        pooledkernel.wait_settled(busy.pid, lambda: False, most=30)
        waited = time.monotonic() - started
        assert marker.exists(), "the pool would have started filling while the launched kernel was busy"
        assert waited < 15, f"waited {waited:.0f} s, near the 30 s limit: the kernel's settling went unseen"
    finally:
        busy.kill()
        busy.wait()
    started = time.monotonic()
    pooledkernel.wait_settled(busy.pid, lambda: False, most=30)
    assert time.monotonic() - started < 1, "a kernel that is gone is not waited for"


def edit_spec(folder: Path, provisioner: dict[str, Any] | None = None, env: dict[str, str] | None = None, curve: bool = False) -> None:
    """Change an installed kernelspec's kernel.json as a user or the server's config would: provisioner
    traits, env entries, and the encryption support that kernelspecs/kernel.json declares."""
    spec = json.loads((folder / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"].update(provisioner or {})
    spec["env"].update(env or {})
    if curve:
        spec["metadata"]["supported_encryption"] = ["curve"]
    (folder / "kernel.json").write_text(json.dumps(spec))


def test_a_pooled_kernel_handed_over_is_as_protected_as_a_fresh_one(prefix: Path, spy_account: str) -> None:
    """The pool starts its kernels through jupyter_client with the launching manager's settings: under
    transport_encryption="required" a pooled kernel gets CurveZMQ keys, the notebook's manager receives
    them at the hand-over, its cells run, and a subscriber without the keys (another local account)
    reads none of their output. The same spy reads a kernel started without encryption (the check can
    fail). No Spark is needed for the channels: the kernelspec starts none."""
    spec = install(prefix, "--name", "pooled-curve", "--pool", "1", "--start", "none", "--no-cds", "--replace")
    edit_spec(spec, curve=True)
    first = KernelHarness(spec.name, transport_encryption="required")
    try:
        pool = the_pool(first)
        assert pool.wait_ready(1, READY), "the pool filled one kernel"
        pooled = pool.idle[0]
        forced = psutil.Process(pooled.pid).environ().get("PYSPARK_KERNEL_WARMUP")
        assert forced is None, f"the pool set PYSPARK_KERNEL_WARMUP={forced}: a kernel warms by its own default"
        notebook = KernelHarness(spec.name, transport_encryption="required")
        try:
            assert notebook.pid == pooled.pid, "the launch took the pooled kernel"
            info = notebook.manager.get_connection_info()
            assert info.get("curve_publickey") and info.get("curve_secretkey"), sorted(info)
            on_disk = json.loads(Path(notebook.manager.connection_file).read_text())
            assert on_disk["curve_secretkey"] == info["curve_secretkey"], "the connection file Jupyter wrote has the pooled kernel's keys"
            assert notebook.value("6 * 7") == "42", "the handed-over kernel runs cells over its encrypted channels"
            frames = spied_frames(notebook, f"secret-output-{uuid.uuid4().hex}")
            assert frames == [], f"the second account read {len(frames)} frame(s) of a pooled kernel: {frames[:5]}"
        finally:
            notebook.shutdown()
    finally:
        first.shutdown()
    plain = KernelHarness(spec.name, transport_encryption="disabled")  # another template: a fresh start, no keys
    try:
        marker = f"plain-output-{uuid.uuid4().hex}"
        assert any(marker in frame for frame in spied_frames(plain, marker)), "the spy reads an unencrypted kernel"
    finally:
        plain.shutdown()


def test_idle_pooled_kernels_are_capped_per_server_whatever_the_keys(prefix: Path) -> None:
    """A variable that changes per launch makes a pool per launch (the pool's key is the whole launch
    environment). With the server's cap at 1 (pool_max_idle, the provisioner trait a server sets in its
    config), the newer pool's kernel ends the older pool's idle one: one idle kernel in all, not two."""
    spec = install(prefix, "--name", "pooled-cap", "--pool", "1", "--start", "none", "--no-cds", "--replace")
    edit_spec(spec, provisioner={"pool_max_idle": 1})
    older = KernelHarness(spec.name, extra_env={"PER_LAUNCH_TOKEN": "one"})
    try:
        older_pool = the_pool(older)
        assert older_pool.wait_ready(1, READY)
        evicted = family(older_pool.idle[0].pid)
        newer = KernelHarness(spec.name, extra_env={"PER_LAUNCH_TOKEN": "two"})
        try:
            newer_pool = the_pool(newer)
            assert newer_pool is not older_pool, "another environment, another pool"
            assert newer_pool.wait_ready(1, READY), "the pool launched last fills"
            assert older_pool.idle == [], "the least recently launched pool gave up its idle kernel"
            assert wait_gone(evicted, timeout=60) == [], "and that kernel was shut down"
            assert sum(len(pool.idle) for pool in pool_module.pools()) == 1
        finally:
            newer.shutdown()
    finally:
        older.shutdown()


def test_a_launch_cancelled_during_the_hand_over_ends_the_pooled_kernel(prefix: Path) -> None:
    """A kernel taken from the pool belongs to no one until a launch adopts it. Here the launch is
    cancelled (as jupyter_server cancels a pending kernel's start when it is shut down) right after it
    took the pooled kernel, while the hand-over runs: that kernel must end, not run on unowned."""
    spec = install(prefix, "--name", "pooled-cancel", "--pool", "1", "--start", "none", "--no-cds", "--replace")

    async def scenario() -> tuple[list[psutil.Process], bool]:
        first = AsyncKernelManager(kernel_name=spec.name)
        await first.start_kernel()
        try:
            pool = first.provisioner._pool  # type: ignore[union-attr]
            assert await asyncio.to_thread(pool.wait_ready, 1, READY)
            pooled = pool.idle[0]
            taken = family(pooled.pid)
            second = AsyncKernelManager(kernel_name=spec.name)
            launch = asyncio.ensure_future(second.start_kernel())
            while pooled in pool.idle and not launch.done():
                await asyncio.sleep(0)  # every turn of the loop: the cancel lands at the launch's first wait after the take
            launch.cancel()
            with pytest.raises(asyncio.CancelledError):
                await launch
            return taken, second.has_kernel
        finally:
            await first.shutdown_kernel(now=True)

    taken, adopted = asyncio.run(scenario())
    try:
        assert not adopted
        assert wait_gone(taken, timeout=60) == [], "the pooled kernel a cancelled launch took was ended"
    finally:
        for process in taken:
            if process.is_running():
                process.kill()


BACKOFF_SECONDS = 8.0


@pytest.mark.reliability
def test_a_pool_whose_kernels_failed_tries_again_after_its_backoff(prefix: Path, tmp_path: Path) -> None:
    """Two failed starts in a row pause a pool; after its backoff the next launch fills it again. The
    failure is real and then fixed: spark-submit is given a properties file that does not exist yet, so
    every Spark fails at start, until the file is written. The backoff is BACKOFF_SECONDS here (the
    trait pool_failure_backoff, 60 s by default) so the test waits seconds, not minutes."""
    properties = tmp_path / "spark.properties"
    spec = install(prefix, "--name", "pooled-backoff", "--pool", "1", "--replace")
    submit_args = json.loads((spec / "kernel.json").read_text())["env"]["PYSPARK_SUBMIT_ARGS"]
    edit_spec(spec, provisioner={"pool_failure_backoff": BACKOFF_SECONDS}, env={"PYSPARK_SUBMIT_ARGS": f"--properties-file {properties} {submit_args}"})
    first = KernelHarness(spec.name)
    try:
        pool = the_pool(first)
        assert not pool.wait_ready(1, READY), "pooled kernels whose Spark cannot start are never ready"
        assert pool.idle == [] and not pool.filling, "after two failures in a row the pool pauses"
    finally:
        first.shutdown()
    properties.write_text("spark.ui.showConsoleProgress=false\n")  # the cause is fixed
    time.sleep(BACKOFF_SECONDS)  # the pause began at the second failure, before wait_ready gave up
    second = KernelHarness(spec.name)
    try:
        assert second.value("spark.range(3).count()") == "3"
        assert the_pool(second) is pool
        assert pool.wait_ready(1, READY), "the first launch after the backoff fills the pool again"
    finally:
        second.shutdown()
