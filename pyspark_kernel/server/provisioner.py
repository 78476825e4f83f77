"""The launcher plugin: a jupyter_client kernel provisioner that resolves Spark when Jupyter launches.

A kernel.json written once goes stale: pip upgrades pyspark and the py4j zip changes its name,
SPARK_HOME moves, concurrent notebooks race for port 4040. Chosen by ``install --provisioner`` (the
``metadata.kernel_provisioner`` of kernel.json), this provisioner re-resolves the environment with
environment.py at every launch, fails a launch at once with the cause and the fix, hands each kernel
its own Spark UI port, and at shutdown makes sure neither the kernel nor its JVM survives. It runs in
the Jupyter server's process and never imports Spark or the kernel.

With ``pool_size`` (``install --pool N``) it also keeps a warm pool of this kernelspec's kernels
(pool.py) and hands one out at launch instead of starting a process.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_client.connect import LocalPortCache
from jupyter_client.provisioning import LocalProvisioner
from traitlets import Float, Integer

from pyspark_kernel import environment, submitargs
from pyspark_kernel.errors import Problem, SparkLaunchError
from pyspark_kernel.masters import is_local_master
from pyspark_kernel.ports import PortReservation, hold, reserve_port
from pyspark_kernel.server.pool import (
    DEFAULT_FAILURE_BACKOFF_SECONDS,
    DEFAULT_IDLE_TIMEOUT_SECONDS,
    KernelPool,
    PooledKernel,
    Template,
    pool_for,
)
from pyspark_kernel.server.poolregistry import MAX_IDLE_PER_SERVER
from pyspark_kernel.server.reaper import KILL_WAIT_SECONDS, end_processes, java_children

# From 4050, above the 4040, 4041, … that kernels without the provisioner take.
UI_PORT_START = 4050
# A scan for a kernel's JVMs reads every process's /proc entry in Python (psutil's children()); the
# server's restarter polls each kernel every 3 s, so with many kernels unthrottled scans starve its loop.
JVM_NOTE_SECONDS = 10.0
_SCANNING = threading.Lock()  # one poll-time scan at a time in the server process


async def off_loop(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a worker thread, in an empty context: jupyter_client's blocking calls there
    (run_sync) would otherwise find the server's running loop in the copied context."""
    return await asyncio.to_thread(contextvars.Context().run, function, *args)


def refreshed_python_path(old: str, spark: environment.SparkEnvironment) -> str:
    """This Spark's pyspark and py4j as resolved now, then the kernelspec's other entries that exist."""
    home = spark.spark_home.resolve()
    kept = [entry for entry in old.split(os.pathsep) if entry and not Path(entry).resolve().is_relative_to(home) and Path(entry).exists()]
    return os.pathsep.join(spark.python_path + kept)


def with_own_ui_port(env: dict[str, str]) -> PortReservation | None:
    """Give a local-mode kernel its own Spark UI port in PYSPARK_SUBMIT_ARGS, held until released
    (no other kernel picks it meanwhile); None when the kernelspec sets one or the master is a cluster's."""
    submit_args = env.get("PYSPARK_SUBMIT_ARGS", submitargs.CLOSING)
    submitted = submitargs.parse(submit_args)
    if env.get("SPARK_REMOTE") or "spark.ui.port" in submitted.conf or not is_local_master(submitted.master):
        return None
    reservation = reserve_port(UI_PORT_START)
    env["PYSPARK_SUBMIT_ARGS"] = submitargs.with_conf(submit_args, {"spark.ui.port": str(reservation.port)})
    return reservation


class PySparkProvisioner(LocalProvisioner):  # type: ignore[misc]
    """LocalProvisioner that re-resolves Spark at launch and reaps the kernel's JVM at shutdown.

    It runs on the Jupyter server's event loop, so everything slow (``java -version``, the kernel
    Python's probe, process scans, waiting for processes to exit) runs in a worker thread.
    """

    pool_size = Integer(0, config=True, help="idle kernels of this kernelspec kept started and warmed (0: no pool)")
    pool_idle_timeout = Float(DEFAULT_IDLE_TIMEOUT_SECONDS, config=True, help="seconds an idle pooled kernel is kept")
    pool_failure_backoff = Float(
        DEFAULT_FAILURE_BACKOFF_SECONDS,
        config=True,
        help="seconds a pool pauses after its kernels failed to start twice in a row (doubling with each further failure)",
    )
    pool_max_idle = Integer(
        MAX_IDLE_PER_SERVER,
        config=True,
        help="idle pooled kernels in the whole Jupyter server, all pooled kernelspecs together (set it in the server's config)",
    )

    ui_port: PortReservation | None = None
    _jvms: dict[int, float]
    _jvms_noted_at = float("-inf")  # when poll last noted the JVMs (monotonic)
    _pool: KernelPool | None = None

    def _finalize_env(self, env: dict[str, str]) -> None:
        """Called by pre_launch with the kernelspec's env applied: the cheap part, on the loop."""
        super()._finalize_env(env)
        self._jvms = {}
        base_url = self._server_base_url()
        if base_url:
            env["PYSPARK_KERNEL_BASE_URL"] = base_url

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        kwargs = await super().pre_launch(**kwargs)
        env = kwargs["env"]
        if not env.get("SPARK_REMOTE"):  # a Spark Connect kernel has no local Spark to resolve
            await asyncio.to_thread(self._resolve_spark, env)
        if self.pool_size > 0 and getattr(self.parent, "transport", "tcp") == "tcp":  # pooled kernels take cached TCP ports
            self._pool = pool_for(
                self._template(kwargs), self.pool_size, self.pool_idle_timeout, with_own_ui_port, self.pool_failure_backoff, self.pool_max_idle
            )
        if self.ui_port is None:  # a restarted kernel keeps its port; a pooled kernel taken at launch brings its own
            self.ui_port = await asyncio.to_thread(with_own_ui_port, env)
        elif not env.get("SPARK_REMOTE"):
            env["PYSPARK_SUBMIT_ARGS"] = submitargs.with_conf(env.get("PYSPARK_SUBMIT_ARGS", submitargs.CLOSING), {"spark.ui.port": str(self.ui_port.port)})
        return kwargs

    def _template(self, kwargs: dict[str, Any]) -> Template:
        """This launch as the pool sees it: the command with its connection file left open, the env, and
        the launching KernelManager's channel settings (transport_encryption and the like)."""
        own_file = os.path.realpath(self.parent.connection_file) if self.parent is not None else None
        argv = [arg.replace(own_file, "{connection_file}") if own_file else arg for arg in kwargs["cmd"]]
        return Template.of(self.kernel_spec, self.parent, argv, kwargs["env"], kwargs.get("cwd"))

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict[str, Any]:
        """Hand over a ready pooled kernel when there is one; else launch as usual, and fill the pool."""
        pooled = self._pool.take() if self._pool is not None else None
        if pooled is not None:
            adopted = False
            try:
                await off_loop(self._pool.hand_over, pooled, kwargs.get("cwd"), kwargs["env"])  # type: ignore[union-attr]
                info = self._adopt(pooled, kwargs.get("cwd"))
                adopted = True
            except Exception as error:
                self.log.warning("pyspark-kernel: the pooled kernel %d could not be handed over (%s); starting one", pooled.pid, error)
            finally:  # failed, or cancelled mid-hand-over: a kernel no launch owns is ended, never left running
                if not adopted:
                    self._pool.discard(pooled)  # type: ignore[union-attr]
            if adopted:
                await off_loop(pooled.release)
                return info
        info = await super().launch_kernel(cmd, **kwargs)
        if self._pool is not None:
            self._pool.refill(after=self.pid)  # once this kernel has settled: its start gets the CPU first
        return info

    def _adopt(self, pooled: PooledKernel, cwd: str | None) -> dict[str, Any]:
        """Make the pooled kernel this provisioner's own, as launch_kernel would have left it: its process,
        its UI port, its whole connection info (signing and curve keys) and its cached ports."""
        if self.ports_cached:  # the ports pre_launch cached for a process that will not start
            for name in ("shell_port", "iopub_port", "stdin_port", "hb_port", "control_port"):
                LocalPortCache.instance().return_port(self.connection_info[name])
        self.release_ui_port()  # the one pre_launch reserved for a fresh start
        self.ui_port = pooled.ui_port
        self.process, self.pid, self.pgid = pooled.process, pooled.pid, pooled.pgid or pooled.pid
        self.cwd = cwd or os.getcwd()
        self.__dict__.setdefault("_jvms", {}).update(pooled.jvms)
        self.connection_info = pooled.connection_info
        self.ports_cached = pooled.ports_cached  # then cleanup returns them when this kernel ends for good
        assert self._pool is not None
        self._pool.refill(after=self.pid)
        return self.connection_info

    def release_ui_port(self) -> None:
        if self.ui_port is not None:
            self.ui_port.release()
            self.ui_port = None

    def _resolve_spark(self, env: dict[str, str]) -> None:
        """Resolve Spark again and fix the kernel's env up: paths as they are now."""
        try:
            spark = environment.resolve(env.get("SPARK_HOME"), self.kernel_spec.argv[0], environ=env)
        except Problem as error:
            raise SparkLaunchError(f"Cannot launch {self.kernel_spec.display_name!r}: {error.problem}", error.fix) from None
        env["SPARK_HOME"] = str(spark.spark_home)
        env["PYTHONPATH"] = refreshed_python_path(env.get("PYTHONPATH", ""), spark)

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
        """Jupyter polls a running kernel every few seconds (and every 0.1 s while it waits for one to
        exit): note its JVMs while they are its children, at most every JVM_NOTE_SECONDS."""
        result = await super().poll()
        if result is None and self.pid and time.monotonic() - self._jvms_noted_at >= JVM_NOTE_SECONDS:
            await asyncio.to_thread(self._note_jvms_unless_scanning)
        return result

    def _note_jvms(self) -> None:
        self.__dict__.setdefault("_jvms", {}).update(java_children(self.pid))

    def _note_jvms_unless_scanning(self) -> None:
        """A poll's note, skipped (due again at the next poll) while another kernel's scan runs. Unthrottled,
        16 kernels' scans held the GIL so often that /api/status p99 was 274-433 ms (bench/burst.py)."""
        if not _SCANNING.acquire(blocking=False):
            return
        try:
            self._note_jvms()
            self._jvms_noted_at = time.monotonic()
        finally:
            _SCANNING.release()

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
        if not restart or self._pool is not None:  # a pooled restart takes a kernel that has its own port
            self.release_ui_port()
        await super().cleanup(restart)
        if self._pool is not None and not restart:
            self._pool.refill()

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
