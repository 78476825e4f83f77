"""A warm kernel pool: kernels started before anyone asks, their Spark up and warmed, handed out at launch.

Opt-in per kernelspec (``install --pool N``, read by the provisioner from kernel.json's provisioner
config). It lives in the Jupyter server's process, beside the provisioner: the first launch of a pooled
kernelspec starts normally and the pool fills once that kernel has settled (wait_settled); later
launches take a ready kernel, whose connection info the provisioner returns to Jupyter as remote
provisioners do, and tell it what the notebook needs (``hand_over``: working folder, the per-notebook
variables, the notebook's name). How one pooled kernel starts and ends: pooledkernel.py.

Rules: at most N idle kernels per kernelspec, and at most ``max_idle`` idle kernels in the whole server
whatever the pools (poolregistry.py); a pooled kernel nobody takes within the idle timeout is shut down (and
the pool fills again only at the next launch); a hand-over and a shutdown refill it in the background;
starts that fail MAX_FAILED_STARTS times in a row pause the pool for a backoff that doubles with each
further failure. Threads, not asyncio: a blocking KernelManager runs its event loop only inside its own
calls, and a pool must fill between them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pyspark_kernel.ports import PortReservation
from pyspark_kernel.server import poolregistry as registry
from pyspark_kernel.server.pooledkernel import (
    PER_NOTEBOOK_VARS,
    PooledKernel,
    Template,
    tree_cpu_seconds,
    wait_settled,
)
from pyspark_kernel.server.poolregistry import pools, shutdown_all

MAX_FAILED_STARTS = 2  # in a row: then the pool pauses for its backoff instead of starting JVMs that fail
DEFAULT_FAILURE_BACKOFF_SECONDS = 60.0  # the first pause; each failure after it doubles the pause...
MAX_FAILURE_BACKOFF_SECONDS = 3600.0  # ...up to an hour: a kernelspec fixed meanwhile pools again at a launch
DEFAULT_IDLE_TIMEOUT_SECONDS = 1800.0

logger = logging.getLogger(__name__)


class KernelPool:
    """Up to ``size`` idle, warmed kernels of one kernelspec (one Template), each kept ``idle_timeout`` s.

    ``prepare(env)`` adds a kernel's own settings to its environment before it starts (the provisioner
    gives each its Spark UI port) and returns the port's reservation, which travels with the kernel.
    ``failure_backoff`` is the first pause after MAX_FAILED_STARTS failed starts in a row.
    """

    def __init__(
        self,
        template: Template,
        size: int,
        idle_timeout: float,
        prepare: Callable[[dict[str, str]], PortReservation | None],
        failure_backoff: float = DEFAULT_FAILURE_BACKOFF_SECONDS,
    ) -> None:
        self.template = template
        self.size = size
        self.idle_timeout = idle_timeout
        self.prepare = prepare
        self.failure_backoff = failure_backoff
        self.idle: list[PooledKernel] = []  # started by the pool and not handed out, ready or not
        self.used_at = time.monotonic()  # the last launch of this pool's kernelspec: the registry evicts the least recent
        self.starting = False  # a start the registry counted, not yet in ``idle``
        self.closed = False
        self.paused_until = 0.0  # monotonic: no start before (the failure backoff)
        self._failures = 0
        self._filler: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._keeper: threading.Thread | None = None

    # -- what the provisioner asks -----------------------------------------------------------
    def take(self) -> PooledKernel | None:
        """A ready idle kernel, removed from the pool, or None (then the launch starts one as usual)."""
        with self._lock:
            for kernel in list(self.idle):
                if kernel.ready_at is not None and kernel.alive():
                    self.idle.remove(kernel)
                    return kernel
        return None

    def refill(self, after: int | None = None) -> None:
        """Fill the pool in the background, one kernel at a time (on 2 cores, parallel JVM starts only
        slow each other and the notebooks in use), once the kernel ``after`` (a pid) has settled."""
        with self._lock:
            if self.closed or self._filler is not None or len(self.idle) >= self.size or self._paused():
                return
            self._filler = threading.Thread(target=self._fill, args=(after,), name="pyspark-kernel-pool-fill", daemon=True)
            self._filler.start()
        self._ensure_keeper()

    def hand_over(self, kernel: PooledKernel, cwd: str | None, env: dict[str, str]) -> None:
        """Tell ``kernel`` it now serves the notebook launched with ``cwd`` and ``env``; raises on failure."""
        kernel.hand_over(str(cwd or self.template.cwd), env)

    def discard(self, kernel: PooledKernel) -> None:
        """End a kernel taken from this pool that no launch adopted (its hand-over failed or its launch was
        cancelled), in the background: the caller may be unwinding. A launch that goes on refills the pool
        once its own kernel has settled; after a cancelled one, the next launch or shutdown does."""
        threading.Thread(target=kernel.end, name="pyspark-kernel-pool-discard", daemon=True).start()

    def ready_count(self) -> int:
        with self._lock:
            return sum(1 for kernel in self.idle if kernel.ready_at is not None)

    def wait_ready(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` idle kernels are ready (benchmarks and tests); False at the timeout, or at
        once when the pool stopped filling (closed, paused by failures, or held back by the server's cap)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(1 for kernel in self.idle if kernel.ready_at is not None) < count:
                left = deadline - time.monotonic()
                if left <= 0 or self.closed or (self._filler is None and len(self.idle) < count):
                    return False
                self._changed.wait(min(left, 1.0))
        return True

    def shutdown(self) -> None:
        """End every idle kernel now and start no more (the server is exiting)."""
        with self._lock:
            self.closed = True
            idle, self.idle = self.idle, []
            self._changed.notify_all()
        registry.end_all(idle)

    def evict(self) -> PooledKernel | None:
        """Remove the ready idle kernel that has waited longest, for the server's cap (the caller ends it)."""
        with self._lock:
            ready = sorted((kernel for kernel in self.idle if kernel.ready_at is not None), key=lambda kernel: kernel.ready_at or 0.0)
            if not ready:
                return None
            self.idle.remove(ready[0])
            return ready[0]

    @property
    def filling(self) -> bool:
        return self._filler is not None

    def held(self) -> int:
        """Idle kernels, ready or starting, that count against the server's cap."""
        with self._lock:
            return len(self.idle) + int(self.starting)

    # -- the pool's own threads ----------------------------------------------------------------
    def _paused(self) -> bool:
        return time.monotonic() < self.paused_until

    def _fill(self, after: int | None) -> None:
        if after is not None:
            wait_settled(after, lambda: self.closed)
        while True:
            with self._lock:
                full = self.closed or len(self.idle) >= self.size or self._paused()
            if full or not registry.claim_room(self):
                with self._changed:
                    self._filler = None
                    self._changed.notify_all()
                return
            self._start_one()

    def _start_one(self) -> None:
        kernel = None
        try:
            env = dict(self.template.env)
            ui_port = self.prepare(env)
            kernel = PooledKernel.start(self.template, env, ui_port)
            with self._lock:
                self.idle.append(kernel)
                self.starting = False
            kernel.wait_warm(lambda: self.closed)
            with self._changed:
                self._failures = 0
                self._changed.notify_all()
            logger.info("pyspark-kernel pool %s: kernel %d ready (%.0f MB, kernel and JVM)", self.template.name, kernel.pid, kernel.memory_mb())
        except Exception as error:
            self._failed(kernel, error)
        finally:
            with self._lock:
                self.starting = False
                ended = self.closed and kernel is not None
        if ended:  # shutdown() came while this kernel was starting
            kernel.end()  # type: ignore[union-attr]

    def _failed(self, kernel: PooledKernel | None, error: Exception) -> None:
        with self._lock:
            self._failures += 1
            if kernel is not None and kernel in self.idle:
                self.idle.remove(kernel)
            if self._failures >= MAX_FAILED_STARTS:
                pause = min(self.failure_backoff * 2 ** (self._failures - MAX_FAILED_STARTS), MAX_FAILURE_BACKOFF_SECONDS)
                self.paused_until = time.monotonic() + pause
        logger.warning("pyspark-kernel pool %s: a pooled kernel did not become ready: %s", self.template.name, error)
        if self._failures >= MAX_FAILED_STARTS:
            logger.warning(
                "pyspark-kernel pool %s: %d starts failed in a row; the pool tries again at the first launch after %.0f s",
                self.template.name,
                self._failures,
                self.paused_until - time.monotonic(),
            )
        if kernel is not None:
            kernel.end()

    def _ensure_keeper(self) -> None:
        with self._lock:
            if self._keeper is None or not self._keeper.is_alive():
                self._keeper = threading.Thread(target=self._keep, name="pyspark-kernel-pool-keeper", daemon=True)
                self._keeper.start()

    def _keep(self) -> None:
        """Cull kernels idle past the timeout and drop dead ones; ends when the pool is empty."""
        while True:
            with self._changed:
                self._changed.wait(min(max(self.idle_timeout / 4, 0.2), 5.0))
                if self.closed or (not self.idle and self._filler is None):
                    self._keeper = None
                    return
                now = time.monotonic()
                leaving = [kernel for kernel in self.idle if not kernel.alive() or (kernel.ready_at is not None and now - kernel.ready_at > self.idle_timeout)]
                for kernel in leaving:
                    self.idle.remove(kernel)
            for kernel in leaving:
                logger.info("pyspark-kernel pool %s: kernel %d %s", self.template.name, kernel.pid, "culled (idle timeout)" if kernel.alive() else "died")
                kernel.end()


def pool_for(
    template: Template,
    size: int,
    idle_timeout: float,
    prepare: Callable[[dict[str, str]], PortReservation | None],
    failure_backoff: float = DEFAULT_FAILURE_BACKOFF_SECONDS,
    max_idle: int = registry.MAX_IDLE_PER_SERVER,
) -> KernelPool:
    """The pool of this launch's template, made on first use; ``max_idle`` caps idle kernels server-wide."""
    return registry.pool_for(template, lambda: KernelPool(template, size, idle_timeout, prepare, failure_backoff), max_idle)


__all__ = ["PER_NOTEBOOK_VARS", "KernelPool", "PooledKernel", "Template", "pool_for", "pools", "shutdown_all", "tree_cpu_seconds", "wait_settled"]
