"""The launcher plugin through jupyter_client and a real Jupyter server: Spark resolved at launch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import KernelHarness, install, wait_gone
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import KernelManager
from reliability.server import JupyterServer

from pyspark_kernel.server.provisioner import PySparkProvisioner

pytestmark = pytest.mark.slow


def test_provisioner_is_chosen_and_picks_the_ui_port(prefix: Path) -> None:
    folder = install(prefix, "--name", "provisioned", "--provisioner", "--replace")
    kernel = KernelHarness(folder.name)
    try:
        provisioner = kernel.manager.provisioner
        assert isinstance(provisioner, PySparkProvisioner)
        assert provisioner.ui_port is not None and provisioner.ui_port.port >= 4050
        assert kernel.value("sc.uiWebUrl").strip("'").endswith(f":{provisioner.ui_port.port}")
        jvms = kernel.java_children()
    finally:
        kernel.shutdown()
    assert wait_gone(jvms, timeout=15) == []


def test_stale_py4j_path_is_resolved_again(prefix: Path, spark_359_home: Path) -> None:
    folder = install(prefix, "--name", "provisioned359", "--spark-home", str(spark_359_home), "--provisioner", "--replace")
    spec = json.loads((folder / "kernel.json").read_text())
    # As after an upgrade: the recorded py4j zip is gone.
    stale = str(spark_359_home / "python" / "lib" / "py4j-0.10.9.5-src.zip")
    spec["env"]["PYTHONPATH"] = spec["env"]["PYTHONPATH"].replace(spec["metadata"]["pyspark_kernel"]["py4j_zip"], stale)
    (folder / "kernel.json").write_text(json.dumps(spec))
    kernel = KernelHarness(folder.name)
    try:
        assert kernel.value("spark.version") == "'3.5.9'", "the environment's own pyspark 4.3 was not used"
        assert stale not in kernel.value("import os; os.environ['PYTHONPATH']")
    finally:
        kernel.shutdown()


def test_missing_spark_home_fails_the_launch_at_once(prefix: Path) -> None:
    folder = install(prefix, "--name", "provisioned-gone", "--provisioner", "--replace")
    spec = json.loads((folder / "kernel.json").read_text())
    spec["env"]["SPARK_HOME"] = "/nonexistent/spark"
    (folder / "kernel.json").write_text(json.dumps(spec))
    manager = KernelManager(kernel_name=folder.name)
    started = time.monotonic()
    with pytest.raises(RuntimeError) as failure:
        manager.start_kernel()
    assert time.monotonic() - started < 5, "the launch did not fail fast"
    assert "SPARK_HOME /nonexistent/spark does not exist" in str(failure.value) and "Fix:" in str(failure.value)


def test_notebook_launched_by_jupyter_server_names_the_app(prefix: Path, isolated_jupyter: Path) -> None:
    folder = install(prefix, "--name", "provisioned-server", "--provisioner", "--replace")
    root = isolated_jupyter / "server-root"
    (root / "nb").mkdir(parents=True, exist_ok=True)
    server = JupyterServer(root)
    try:
        notebook = {"path": "nb/analysis.ipynb", "type": "notebook", "name": "analysis.ipynb", "kernel": {"name": folder.name}}
        session = server.request("POST", "/api/sessions", notebook, timeout=60)
        kernel_id = session["kernel"]["id"]
        runtime = Path(server.request("GET", "/api/status", timeout=5).get("runtime_dir", "") or "")
        connection_file = (
            next(Path(p) for p in (runtime, isolated_jupyter / "runtime") if (Path(p) / f"kernel-{kernel_id}.json").exists()) / f"kernel-{kernel_id}.json"
        )
        client = BlockingKernelClient(connection_file=str(connection_file))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            outputs = []
            client.execute_interactive("print(sc.appName)", timeout=180, output_hook=lambda m: outputs.append(m["content"].get("text", "")))
            assert "analysis.ipynb" in "".join(outputs), outputs
        finally:
            client.stop_channels()
        server.request("DELETE", f"/api/sessions/{session['id']}")
    finally:
        server.stop()


def test_a_refreshed_pythonpath_drops_only_entries_inside_spark_home(tmp_path: Path) -> None:
    """/opt/spark's old entries are replaced; /opt/spark-extras is another folder and stays."""
    from pyspark_kernel.environment import JavaRuntime, SparkEnvironment
    from pyspark_kernel.server.provisioner import refreshed_python_path

    home, extras = tmp_path / "spark", tmp_path / "spark-extras"
    (home / "python" / "lib").mkdir(parents=True)
    extras.mkdir()
    py4j = home / "python" / "lib" / "py4j-0.10.9.9-src.zip"
    py4j.touch()
    spark = SparkEnvironment(
        spark_home=home,
        spark_version="4.3.0",
        scala_version="2.13",
        py4j_zip=py4j,
        pyspark_path=home / "python",
        python=Path(sys.executable),
        python_version="3.11",
        java=JavaRuntime(Path("/usr/bin/java"), 17, "17"),
    )
    old = os.pathsep.join([str(home / "python" / "lib" / "py4j-0.10.9.7-src.zip"), str(extras)])
    assert refreshed_python_path(old, spark).split(os.pathsep) == [*spark.python_path, str(extras)]


def test_the_provisioner_does_not_import_the_kernels_modules() -> None:
    """It runs inside the Jupyter server: nothing of kernel/, no Spark there."""
    kernel_side = (
        "pyspark_kernel.kernel.session",
        "pyspark_kernel.kernel.ipkernel",
        "pyspark_kernel.kernel.controller",
        "pyspark_kernel.kernel.jvm",
        "pyspark_kernel.kernel.backends.classic",
        "pyspark_kernel.kernel.backends.connect",
        "pyspark",
    )
    probe = f"import sys, pyspark_kernel.server.provisioner; print(sorted(m for m in sys.modules if m in {kernel_side!r}))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


def test_launch_work_runs_off_the_servers_event_loop_and_the_ui_port_is_persisted(prefix: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolving Spark (java -version, the kernel Python's probe) and scanning for JVMs block for up to
    seconds: on the Jupyter server's event loop that would stall every other kernel and request. Spies
    (wrapping the real functions) record the thread each runs on. The UI port travels through
    get_provisioner_info/load_provisioner_info to a server that takes the kernel over."""
    import asyncio
    import threading

    from jupyter_client.manager import AsyncKernelManager

    from pyspark_kernel import environment, processes

    folder = install(prefix, "--name", "provisioned-loop", "--provisioner", "--no-cds", "--start", "none", "--replace")
    seen: list[tuple[str, threading.Thread]] = []
    real_resolve, real_scan = environment.resolve, processes.descendants_named

    def resolve(*args: object, **kwargs: object) -> object:
        seen.append(("resolve", threading.current_thread()))
        return real_resolve(*args, **kwargs)  # type: ignore[arg-type]

    def scan(pid: int, name_part: str) -> list[processes.ProcessIdentity]:
        seen.append(("scan", threading.current_thread()))
        return real_scan(pid, name_part)

    monkeypatch.setattr(environment, "resolve", resolve)
    monkeypatch.setattr(processes, "descendants_named", scan)

    async def scenario() -> tuple[threading.Thread, dict, PySparkProvisioner]:
        manager = AsyncKernelManager(kernel_name=folder.name)
        await manager.start_kernel()
        try:
            await manager.provisioner.poll()
            info = await manager.provisioner.get_provisioner_info()
        finally:
            await manager.shutdown_kernel(now=True)
        successor = PySparkProvisioner(kernel_id=info["kernel_id"], kernel_spec=manager.kernel_spec)
        await successor.load_provisioner_info(info)
        return threading.current_thread(), info, successor

    loop_thread, info, successor = asyncio.run(scenario())
    assert {what for what, _ in seen} == {"resolve", "scan"}, seen
    assert all(thread is not loop_thread for _, thread in seen), "slow launch work ran on the event loop"
    assert info["ui_port"] >= 4050 and successor.ui_port is not None and successor.ui_port.port == info["ui_port"]
    assert successor.ui_port.lock is not None, "the successor holds the port the first one released"
    successor.ui_port.release()
