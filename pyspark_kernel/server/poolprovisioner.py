"""The warm pool's side of a launch: a LocalProvisioner that hands out a ready pooled kernel (pool.py)
instead of starting a process, when its kernelspec has a pool (``install --pool N``).

The provisioner (provisioner.py) builds on it: it resolves Spark and chooses the UI port, and keeps what
it tracks per kernel when it takes a pooled one over (``took_over``). A pooled kernel's connection info is
returned to Jupyter as remote provisioners return theirs.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Callable
from typing import Any

from jupyter_client.connect import KernelConnectionInfo, LocalPortCache
from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from traitlets import Float, Integer

from pyspark_kernel.ports import PortReservation
from pyspark_kernel.server.pool import DEFAULT_FAILURE_BACKOFF_SECONDS, DEFAULT_IDLE_TIMEOUT_SECONDS, KernelPool, PooledKernel, pool_for
from pyspark_kernel.server.poolregistry import MAX_IDLE_PER_SERVER
from pyspark_kernel.server.pooltemplate import Template


async def off_loop(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a worker thread, in an empty context: jupyter_client's blocking calls there
    (run_sync) would otherwise find the server's running loop in the copied context."""
    return await asyncio.to_thread(contextvars.Context().run, function, *args)


class PoolProvisioner(LocalProvisioner):
    """A LocalProvisioner whose launches take a warm kernel from its kernelspec's pool when one is ready."""

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

    _pool: KernelPool | None = None

    def join_pool(self, launch: dict[str, Any], prepare: Callable[[dict[str, str]], PortReservation | None]) -> None:
        """From pre_launch (``launch``: its kwargs, env resolved): find or make this launch's pool, whose
        kernels ``prepare`` gives their own settings. Pooled kernels take cached TCP ports: none on IPC."""
        if self.pool_size > 0 and getattr(self.parent, "transport", "tcp") == "tcp":
            template = Template.of(self.kernel_spec, self.parent, launch["cmd"], launch["env"], launch.get("cwd"))
            self._pool = pool_for(template, self.pool_size, self.pool_idle_timeout, prepare, self.pool_failure_backoff, self.pool_max_idle)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        """Hand over a ready pooled kernel when there is one; else launch as usual, and fill the pool."""
        pool = self._pool
        pooled = pool.take() if pool is not None else None
        if pool is not None and pooled is not None:
            adopted = False
            try:
                await off_loop(pool.hand_over, pooled, kwargs.get("cwd"), kwargs["env"])
                info = self._adopt(pool, pooled, kwargs.get("cwd"))
                adopted = True
            except Exception as error:
                self.log.warning("pyspark-kernel: the pooled kernel %d could not be handed over (%s); starting one", pooled.pid, error)
            finally:  # failed, or cancelled mid-hand-over: a kernel no launch owns is ended, never left running
                if not adopted:
                    pool.discard(pooled)
            if adopted:
                await off_loop(pooled.release)
                return info
        info = await super().launch_kernel(cmd, **kwargs)
        if pool is not None:
            pool.refill(after=self.pid)  # once this kernel has settled: its start gets the CPU first
        return info

    def _adopt(self, pool: KernelPool, pooled: PooledKernel, cwd: str | None) -> KernelConnectionInfo:
        """Make the pooled kernel this provisioner's own, as launch_kernel would have left it: its process,
        its whole connection info (signing and curve keys) and its cached ports; then ``took_over``."""
        if self.ports_cached:  # the ports pre_launch cached for a process that will not start
            cached = self.connection_info
            for port in (cached["shell_port"], cached["iopub_port"], cached["stdin_port"], cached["hb_port"], cached["control_port"]):
                LocalPortCache.instance().return_port(port)
        self.process, self.pid, self.pgid = pooled.process, pooled.pid, pooled.pgid or pooled.pid
        self.cwd = cwd or os.getcwd()
        self.connection_info = pooled.connection_info
        self.ports_cached = pooled.ports_cached  # then cleanup returns them when this kernel ends for good
        self.took_over(pooled)
        pool.refill(after=self.pid)
        return self.connection_info

    def took_over(self, pooled: PooledKernel) -> None:
        """What a subclass keeps of a pooled kernel it now owns (its UI port, its JVMs)."""

    async def cleanup(self, restart: bool = False) -> None:
        await super().cleanup(restart)
        if self._pool is not None and not restart:
            self._pool.refill()
