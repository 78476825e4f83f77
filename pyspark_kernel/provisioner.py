"""The launcher plugin: a jupyter_client kernel provisioner that resolves Spark when Jupyter launches.

A kernel.json written once goes stale: pip upgrades pyspark and the py4j zip changes its name,
SPARK_HOME moves, concurrent notebooks race for port 4040. Chosen by ``install --provisioner`` (the
``metadata.kernel_provisioner`` of kernel.json), this provisioner re-resolves the environment with
environment.py at every launch, fails a launch at once with the cause and the fix, hands each kernel
its own Spark UI port, and at shutdown makes sure neither the kernel nor its JVM survives. It runs in
the Jupyter server's process and never imports Spark or the kernel.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from jupyter_client.provisioning import LocalProvisioner

from . import environment, submitargs
from .errors import Problem, SparkLaunchError
from .options import is_local_master
from .ports import PortReservation, hold, reserve_port

KILL_WAIT_SECONDS = 5.0
# From 4050, above the 4040, 4041, … that kernels without the provisioner take.
UI_PORT_START = 4050


def refreshed_python_path(old: str, spark: environment.SparkEnvironment) -> str:
    """This Spark's pyspark and py4j as resolved now, then the kernelspec's other entries that exist."""
    home = spark.spark_home.resolve()
    kept = [entry for entry in old.split(os.pathsep) if entry and not Path(entry).resolve().is_relative_to(home) and Path(entry).exists()]
    return os.pathsep.join(spark.python_path + kept)


class PySparkProvisioner(LocalProvisioner):  # type: ignore[misc]
    """LocalProvisioner that re-resolves Spark at launch and reaps the kernel's JVM at shutdown.

    It runs on the Jupyter server's event loop, so everything slow (``java -version``, the kernel
    Python's probe, process scans, waiting for processes to exit) runs in a worker thread.
    """

    ui_port: PortReservation | None = None
    _jvms: dict[int, float]

    def _finalize_env(self, env: dict[str, str]) -> None:
        """Called by pre_launch with the kernelspec's env applied: the cheap part, on the loop."""
        super()._finalize_env(env)
        self._jvms = {}
        env["PYSPARK_KERNEL_ID"] = self.kernel_id
        base_url = self._server_base_url()
        if base_url:
            env["PYSPARK_KERNEL_BASE_URL"] = base_url

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        kwargs = await super().pre_launch(**kwargs)
        if not kwargs["env"].get("SPARK_REMOTE"):  # a Spark Connect kernel has no local Spark to resolve
            await asyncio.to_thread(self._resolve_spark, kwargs["env"])
        return kwargs

    def _resolve_spark(self, env: dict[str, str]) -> None:
        """Resolve Spark again and fix the kernel's env up: paths as they are now, its own UI port."""
        try:
            spark = environment.resolve(env.get("SPARK_HOME"), self.kernel_spec.argv[0], environ=env)
        except Problem as error:
            raise SparkLaunchError(f"Cannot launch {self.kernel_spec.display_name!r}: {error.problem}", error.fix) from None
        env["SPARK_HOME"] = str(spark.spark_home)
        env["PYTHONPATH"] = refreshed_python_path(env.get("PYTHONPATH", ""), spark)
        submit_args = env.get("PYSPARK_SUBMIT_ARGS", submitargs.CLOSING)
        submitted = submitargs.parse(submit_args)
        if "spark.ui.port" not in submitted.conf and is_local_master(submitted.master):
            if self.ui_port is None:  # a restarted kernel keeps its port
                self.ui_port = reserve_port(UI_PORT_START)  # held until cleanup: no other kernel picks it
            env["PYSPARK_SUBMIT_ARGS"] = submitargs.with_conf(submit_args, {"spark.ui.port": str(self.ui_port.port)})

    def _server_base_url(self) -> str | None:
        """The Jupyter server's base URL (KernelManager -> MultiKernelManager -> ServerApp), if any."""
        owner: Any = self.parent
        for _ in range(3):
            owner = getattr(owner, "parent", None)
            if owner is not None and isinstance(getattr(owner, "base_url", None), str):
                return owner.base_url
        return None

    async def get_provisioner_info(self) -> dict[str, Any]:
        """What a server that takes this kernel over needs: its UI port and its JVMs."""
        info = await super().get_provisioner_info()
        info.update({"ui_port": self.ui_port.port if self.ui_port else None, "jvms": dict(getattr(self, "_jvms", {}))})
        return info

    async def load_provisioner_info(self, provisioner_info: dict[str, Any]) -> None:
        await super().load_provisioner_info(provisioner_info)
        port = provisioner_info.get("ui_port")
        self.ui_port = PortReservation(port, hold(port)) if port else None
        self._jvms = {int(pid): created for pid, created in provisioner_info.get("jvms", {}).items()}

    async def poll(self) -> int | None:
        """Jupyter polls a running kernel every few seconds: note its JVMs while they are its children."""
        result = await super().poll()
        if result is None and self.pid:
            await asyncio.to_thread(self._note_jvms)
        return result

    def _note_jvms(self) -> None:
        self.__dict__.setdefault("_jvms", {}).update(java_children(self.pid))

    async def kill(self, restart: bool = False) -> None:
        await asyncio.to_thread(self._note_jvms)
        await super().kill(restart)

    async def terminate(self, restart: bool = False) -> None:
        await asyncio.to_thread(self._note_jvms)
        await super().terminate(restart)

    async def cleanup(self, restart: bool = False) -> None:
        """Nothing of the kernel survives: its process group, then any JVM it started, TERM then KILL."""
        if self.pgid:
            for signum in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.pgid, signum)
                except OSError:
                    break
                if await self._group_gone(KILL_WAIT_SECONDS):
                    break
        await asyncio.to_thread(self._reap_jvms)
        if self.ui_port is not None and not restart:
            self.ui_port.release()
            self.ui_port = None
        await super().cleanup(restart)

    async def _group_gone(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pgid, 0)
            except OSError:
                return True
            await asyncio.sleep(0.1)
        return False

    def _reap_jvms(self) -> None:
        end_processes(getattr(self, "_jvms", {}))
        self._jvms = {}


def java_children(pid: int) -> dict[int, float]:
    """pid -> start time of the java processes under ``pid`` (the start time tells a reused PID apart)."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return {}
    found = {}
    for child in children:
        try:
            if "java" in child.name():
                found[child.pid] = child.create_time()
        except psutil.Error:
            continue
    return found


def end_processes(processes: dict[int, float]) -> None:
    """Terminate, then kill, the processes that are still the ones noted (pid and start time)."""
    import psutil

    alive = []
    for pid, created in processes.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == created:  # the same process, not a reused PID
                alive.append(process)
        except psutil.Error:
            continue
    for process in alive:
        process.terminate()
    _, lingering = psutil.wait_procs(alive, timeout=KILL_WAIT_SECONDS)
    for process in lingering:
        process.kill()
