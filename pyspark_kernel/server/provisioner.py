"""The launcher plugin: a jupyter_client kernel provisioner that resolves Spark when Jupyter launches.

A kernel.json written once goes stale: pip upgrades pyspark and the py4j zip changes its name,
SPARK_HOME moves, concurrent notebooks race for port 4040. Chosen by ``install --provisioner`` (the
``metadata.kernel_provisioner`` of kernel.json), this provisioner re-resolves the environment with
environment.py at every launch, fails a launch at once with the cause and the fix, hands each kernel
its own Spark UI port, and at shutdown makes sure neither the kernel nor its JVM survives. It runs in
the Jupyter server's process and never imports Spark or the kernel.

With ``pool_size`` (``install --pool N``) it also keeps a warm pool of this kernelspec's kernels
(pool.py) and hands one out at launch instead of starting a process (poolprovisioner.py, its base).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpec

from pyspark_kernel import environment, processes, submitargs
from pyspark_kernel.errors import Problem, SparkLaunchError
from pyspark_kernel.masters import is_local_master
from pyspark_kernel.ports import PortReservation, hold, reserve_ui_port
from pyspark_kernel.server.kerneljvms import KernelJvms
from pyspark_kernel.server.pooledkernel import PooledKernel
from pyspark_kernel.server.poolprovisioner import PoolProvisioner


def refreshed_python_path(old: str, spark: environment.SparkEnvironment) -> str:
    """This Spark's pyspark and py4j as resolved now, then the kernelspec's other entries that exist."""
    home = spark.spark_home.resolve()
    kept = [entry for entry in old.split(os.pathsep) if entry and not Path(entry).resolve().is_relative_to(home) and Path(entry).exists()]
    return os.pathsep.join(spark.python_path + kept)


def resolve_spark(env: dict[str, str], spec: KernelSpec) -> None:
    """Resolve Spark again (blocking: ``java -version``, the kernel Python's probe) and fix the kernel's
    env up: paths as they are now. Raises SparkLaunchError, with the cause and the fix."""
    try:
        spark = environment.resolve(env.get("SPARK_HOME"), spec.argv[0], environ=env)
    except Problem as error:
        raise SparkLaunchError(f"Cannot launch {spec.display_name!r}: {error.problem}", error.fix) from None
    env["SPARK_HOME"] = str(spark.spark_home)
    env["PYTHONPATH"] = refreshed_python_path(env.get("PYTHONPATH", ""), spark)


def with_own_ui_port(env: dict[str, str]) -> PortReservation | None:
    """Give a local-mode kernel its own Spark UI port in PYSPARK_SUBMIT_ARGS, held until released
    (no other kernel picks it meanwhile); None when the kernelspec sets one or the master is a cluster's."""
    submit_args = env.get("PYSPARK_SUBMIT_ARGS", submitargs.CLOSING)
    submitted = submitargs.parse(submit_args)
    if env.get("SPARK_REMOTE") or "spark.ui.port" in submitted.conf or not is_local_master(submitted.master):
        return None
    reservation = reserve_ui_port(leave_unheld_ports=True)
    env["PYSPARK_SUBMIT_ARGS"] = submitargs.with_conf(submit_args, {"spark.ui.port": str(reservation.port)})
    return reservation


def server_base_url(manager: Any) -> str | None:
    """The Jupyter server's base URL (KernelManager -> MultiKernelManager -> ServerApp), if any."""
    owner = manager
    for _ in range(3):
        owner = getattr(owner, "parent", None)
        base_url = getattr(owner, "base_url", None)
        if isinstance(base_url, str):
            return base_url
    return None


class PySparkProvisioner(PoolProvisioner):
    """LocalProvisioner that re-resolves Spark at launch and reaps the kernel's JVM at shutdown.

    It runs on the Jupyter server's event loop, so everything slow (``java -version``, the kernel
    Python's probe, process scans, waiting for processes to exit) runs in a worker thread.
    """

    ui_port: PortReservation | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._jvms = KernelJvms()

    def _finalize_env(self, env: dict[str, str]) -> None:
        """Called by pre_launch with the kernelspec's env applied: the cheap part, on the loop."""
        super()._finalize_env(env)
        base_url = server_base_url(self.parent)
        if base_url:
            env["PYSPARK_KERNEL_BASE_URL"] = base_url

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        kwargs = await super().pre_launch(**kwargs)
        env = kwargs["env"]
        if not env.get("SPARK_REMOTE"):  # a Spark Connect kernel has no local Spark to resolve
            await asyncio.to_thread(resolve_spark, env, self.kernel_spec)
        self.join_pool(kwargs, with_own_ui_port)
        if self.ui_port is None:  # a restarted kernel keeps its port; a pooled kernel taken at launch brings its own
            self.ui_port = await asyncio.to_thread(with_own_ui_port, env)
        elif not env.get("SPARK_REMOTE"):
            env["PYSPARK_SUBMIT_ARGS"] = submitargs.with_conf(env.get("PYSPARK_SUBMIT_ARGS", submitargs.CLOSING), {"spark.ui.port": str(self.ui_port.port)})
        return kwargs

    def took_over(self, pooled: PooledKernel) -> None:
        """A pooled kernel brings its own UI port (the one pre_launch reserved for a fresh start goes back)
        and the JVMs noted under it."""
        self.release_ui_port()
        self.ui_port = pooled.ui_port
        self._jvms.update(pooled.jvms)

    def release_ui_port(self) -> None:
        if self.ui_port is not None:
            self.ui_port.release()
            self.ui_port = None

    async def get_provisioner_info(self) -> dict[str, Any]:
        """What a server that takes this kernel over needs: its UI port and its JVMs."""
        info = await super().get_provisioner_info()
        info.update({"ui_port": self.ui_port.port if self.ui_port else None, "jvms": dict(self._jvms)})
        return info

    async def load_provisioner_info(self, provisioner_info: dict[str, Any]) -> None:
        await super().load_provisioner_info(provisioner_info)
        port = provisioner_info.get("ui_port")
        self.ui_port = PortReservation(port, hold(port)) if port else None
        self._jvms = KernelJvms({int(pid): created for pid, created in provisioner_info.get("jvms", {}).items()})

    async def poll(self) -> int | None:
        """Jupyter polls a running kernel every few seconds (and every 0.1 s while it waits for one to
        exit): note its JVMs while they are its children, at most every few seconds (kerneljvms.py)."""
        result = await super().poll()
        if result is None and self.pid and self._jvms.due():
            await asyncio.to_thread(self._jvms.note_unless_scanning, self.pid)
        return result

    async def kill(self, restart: bool = False) -> None:
        await asyncio.to_thread(self._jvms.note, self.pid)
        await super().kill(restart)

    async def terminate(self, restart: bool = False) -> None:
        await asyncio.to_thread(self._jvms.note, self.pid)
        await super().terminate(restart)

    async def cleanup(self, restart: bool = False) -> None:
        """Nothing of the kernel survives: its process group, then any JVM it started, TERM then KILL."""
        if self.pgid:
            await asyncio.to_thread(processes.end_group, self.pgid)
        await asyncio.to_thread(self._jvms.end)
        if not restart or self._pool is not None:  # a pooled restart takes a kernel that has its own port
            self.release_ui_port()
        await super().cleanup(restart)  # the pool's: it refills after a shutdown
