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
from typing import Any, ClassVar

from jupyter_client.provisioning import LocalProvisioner

from . import environment
from .kernelspec import submit_settings, with_conf
from .options import is_local_master
from .ports import free_port

KILL_WAIT_SECONDS = 5.0


class SparkLaunchError(RuntimeError):
    """The kernel's Spark environment cannot run; the message names the cause and the fix."""


def refreshed_python_path(old: str, spark: environment.SparkEnvironment) -> str:
    """This Spark's pyspark and py4j as resolved now, then the kernelspec's other entries that exist."""
    home = spark.spark_home.resolve()
    kept = [entry for entry in old.split(os.pathsep) if entry and not Path(entry).resolve().is_relative_to(home) and Path(entry).exists()]
    return os.pathsep.join(spark.python_path + kept)


class PySparkProvisioner(LocalProvisioner):  # type: ignore[misc]
    """LocalProvisioner that re-resolves Spark at launch and reaps the kernel's JVM at shutdown."""

    ports_in_use: ClassVar[set[int]] = set()  # UI ports handed to kernels of this server, until cleanup
    ui_port: int | None = None
    _jvms: dict[int, float]

    def _finalize_env(self, env: dict[str, str]) -> None:
        """Called by pre_launch with the kernelspec's env applied: resolve Spark again and fix env up."""
        super()._finalize_env(env)
        self._jvms = {}
        env["PYSPARK_KERNEL_ID"] = self.kernel_id
        base_url = self._server_base_url()
        if base_url:
            env["PYSPARK_KERNEL_BASE_URL"] = base_url
        if env.get("SPARK_REMOTE"):
            return  # a Spark Connect kernel has no local Spark to resolve
        python = self.kernel_spec.argv[0]
        try:
            spark = environment.resolve(env.get("SPARK_HOME"), python, environ=env)
        except environment.SparkEnvironmentError as error:
            raise SparkLaunchError(f"Cannot launch {self.kernel_spec.display_name!r}: {error}") from None
        env["SPARK_HOME"] = str(spark.spark_home)
        env["PYTHONPATH"] = refreshed_python_path(env.get("PYTHONPATH", ""), spark)
        submit_args = env.get("PYSPARK_SUBMIT_ARGS", "pyspark-shell")
        master, conf, _ = submit_settings(submit_args)
        if "spark.ui.port" not in conf and is_local_master(master):
            # From 4050, above the 4040, 4041, … that kernels without the provisioner take: no race.
            self.ui_port = free_port(4050, self.ports_in_use)
            self.ports_in_use.add(self.ui_port)
            env["PYSPARK_SUBMIT_ARGS"] = with_conf(submit_args, {"spark.ui.port": str(self.ui_port)})

    def _server_base_url(self) -> str | None:
        """The Jupyter server's base URL (KernelManager -> MultiKernelManager -> ServerApp), if any."""
        owner: Any = self.parent
        for _ in range(3):
            owner = getattr(owner, "parent", None)
            if owner is not None and isinstance(getattr(owner, "base_url", None), str):
                return owner.base_url
        return None

    async def poll(self) -> int | None:
        """Jupyter polls a running kernel every few seconds: note its JVMs while they are its children."""
        result = await super().poll()
        if result is None and self.pid:
            self._note_jvms()
        return result

    def _note_jvms(self) -> None:
        import psutil

        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return
        jvms = self.__dict__.setdefault("_jvms", {})
        for child in children:
            try:
                if "java" in child.name():
                    jvms[child.pid] = child.create_time()
            except psutil.Error:
                continue

    async def kill(self, restart: bool = False) -> None:
        self._note_jvms()
        await super().kill(restart)

    async def terminate(self, restart: bool = False) -> None:
        self._note_jvms()
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
        self._reap_jvms()
        if self.ui_port is not None:
            self.ports_in_use.discard(self.ui_port)
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
        import psutil

        alive = []
        for pid, created in getattr(self, "_jvms", {}).items():
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
        self._jvms = {}
