"""Closing the browser tab, then jupyter_server's idle culling, stops the kernel and its JVM.

A real ``jupyter server`` with culling on (``cull_connected=False``: a kernel with an open tab is never
culled) runs a notebook whose cell arrives over the kernel's websocket, as JupyterLab sends it. While
the tab is open the kernel outlives the idle timeout; once the tab closes the culler shuts it down, and
nothing of it may remain: the kernel process (found by its connection file in the server's children)
and the JVM it started. Once with the default kernelspec (jupyter_client's LocalProvisioner), once
through ``--provisioner`` (ours, which also reaps the JVM).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest
from conftest import install, java_processes_under, wait_gone

from reliability.server import JupyterServer, run_over_websocket

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

CULL_IDLE_SECONDS = 10  # above a loaded machine's kernel_info time: a kernel still starting is not culled
CULL_INTERVAL_SECONDS = 2
CULL_ARGS = (
    f"--MappingKernelManager.cull_idle_timeout={CULL_IDLE_SECONDS}",
    f"--MappingKernelManager.cull_interval={CULL_INTERVAL_SECONDS}",
    "--MappingKernelManager.cull_connected=False",
)
CULLED_WITHIN_SECONDS = 60.0  # idle timeout + a few culler passes + the kernel's shutdown, generously
GONE_WITHIN_SECONDS = 30.0


@pytest.fixture(scope="module")
def culling_server(isolated_jupyter: Path) -> Iterator[JupyterServer]:
    with open(isolated_jupyter / "culling-server.log", "ab") as log:
        server = JupyterServer(isolated_jupyter / "culling-root", log, CULL_ARGS)
    try:
        yield server
    finally:
        server.stop()


def idle_seconds(server: JupyterServer, kernel_id: str) -> float | None:
    """How long the server has seen the kernel idle (its last_activity), None if it no longer lists it."""
    for kernel in server.request("GET", "/api/kernels", timeout=30):
        if kernel["id"] == kernel_id:
            return (datetime.now(timezone.utc) - datetime.fromisoformat(kernel["last_activity"].replace("Z", "+00:00"))).total_seconds()
    return None


async def tab_open_then_closed(server: JupyterServer, kernel_id: str, kernel_pid: int) -> tuple[str, list[psutil.Process], float | None]:
    """Count over the websocket, stay connected past the idle timeout and a culler pass, then close.
    Returns the count, the kernel's JVMs, and how idle the still-connected kernel was last seen (None:
    it was culled)."""
    result, websocket = await run_over_websocket(server, kernel_id, "spark.range(10).count()", timeout=300)
    try:
        jvms = java_processes_under(kernel_pid)
        deadline = time.monotonic() + CULLED_WITHIN_SECONDS
        idle = idle_seconds(server, kernel_id)
        while idle is not None and idle < CULL_IDLE_SECONDS + 2 * CULL_INTERVAL_SECONDS and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            idle = idle_seconds(server, kernel_id)
    finally:
        websocket.close()  # the tab closes
    return result, jvms, idle


def wait_culled(server: JupyterServer, kernel_id: str) -> bool:
    deadline = time.monotonic() + CULLED_WITHIN_SECONDS
    while time.monotonic() < deadline:
        if kernel_id not in server.kernel_ids():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.parametrize("install_args", [(), ("--provisioner",)], ids=["default", "provisioner"])
def test_a_closed_tab_is_culled_and_its_jvm_stops(culling_server: JupyterServer, prefix: Path, install_args: tuple[str, ...]) -> None:
    folder = install(prefix, "--name", f"culled{'-provisioned' if install_args else ''}", "--replace", *install_args)
    session = culling_server.open_notebook("cull/tab.ipynb", folder.name)
    kernel_id = session["kernel"]["id"]
    kernel = culling_server.kernel_process(kernel_id)
    assert kernel is not None, f"no child of the server runs kernel-{kernel_id}.json"
    try:
        result, jvms, idle_while_open = asyncio.run(tab_open_then_closed(culling_server, kernel_id, kernel.pid))
        assert result == "10"
        assert idle_while_open is not None, "the kernel was culled while its tab was open"
        assert idle_while_open >= CULL_IDLE_SECONDS, f"the kernel never sat idle past the timeout while connected ({idle_while_open:.1f} s)"
        assert jvms, "the kernel started no JVM"
        assert wait_culled(culling_server, kernel_id), f"the kernel was not culled within {CULLED_WITHIN_SECONDS:.0f} s of its tab closing"
        left = wait_gone([kernel, *jvms], timeout=GONE_WITHIN_SECONDS)
        assert left == [], f"still running after the cull: {left}"
    finally:
        if kernel_id in culling_server.kernel_ids():
            culling_server.request("DELETE", f"/api/sessions/{session['id']}", timeout=120)
