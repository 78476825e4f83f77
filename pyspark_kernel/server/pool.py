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
calls, and a pool must fill between them. Three parts: KernelPool holds the idle kernels and answers the
provisioner and the registry; its PoolFiller starts kernels in the background; its IdleCuller ends
kernels nobody took in time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pyspark_kernel.ports import PortReservation
from pyspark_kernel.server import poolregistry as registry
from pyspark_kernel.server.pooledkernel import PooledKernel, tree_cpu_seconds, wait_settled
from pyspark_kernel.server.poolregistry import pools, shutdown_all
from pyspark_kernel.server.pooltemplate import PER_NOTEBOOK_VARS, Template

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
        self.idle: list[PooledKernel] = []  # started by the pool and not handed out, ready or not
        self.used_at = time.monotonic()  # the last launch of this pool's kernelspec: the registry evicts the least recent
        self.starting = False  # a start the registry counted, not yet in ``idle``
        self.closed = False
        self.lock = threading.Lock()  # guards the fields above, the filler's and the culler's
        self.changed = threading.Condition(self.lock)  # notified when kernels join, leave or get ready
        self.filler = PoolFiller(self, failure_backoff)
        self.culler = IdleCuller(self)

    # -- what the provisioner asks -----------------------------------------------------------
    def take(self) -> PooledKernel | None:
        """A ready idle kernel, removed from the pool, or None (then the launch starts one as usual)."""
        with self.lock:
            for kernel in list(self.idle):
                if kernel.ready_at is not None and kernel.alive():
                    self.idle.remove(kernel)
                    return kernel
        return None

    def refill(self, after: int | None = None) -> None:
        """Fill the pool in the background, one kernel at a time (on 2 cores, parallel JVM starts only
        slow each other and the notebooks in use), once the kernel ``after`` (a pid) has settled."""
        if self.filler.start(after):
            self.culler.ensure_running()

    def hand_over(self, kernel: PooledKernel, cwd: str | None, env: dict[str, str]) -> None:
        """Tell ``kernel`` it now serves the notebook launched with ``cwd`` and ``env``; raises on failure."""
        kernel.hand_over(str(cwd or self.template.cwd), env)

    def discard(self, kernel: PooledKernel) -> None:
        """End a kernel taken from this pool that no launch adopted (its hand-over failed or its launch was
        cancelled), in the background: the caller may be unwinding. A launch that goes on refills the pool
        once its own kernel has settled; after a cancelled one, the next launch or shutdown does."""
        threading.Thread(target=kernel.end, name="pyspark-kernel-pool-discard", daemon=True).start()

    def ready_count(self) -> int:
        with self.lock:
            return sum(1 for kernel in self.idle if kernel.ready_at is not None)

    def wait_ready(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` idle kernels are ready (benchmarks and tests); False at the timeout, or at
        once when the pool stopped filling (closed, paused by failures, or held back by the server's cap)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while sum(1 for kernel in self.idle if kernel.ready_at is not None) < count:
                left = deadline - time.monotonic()
                if left <= 0 or self.closed or (not self.filling and len(self.idle) < count):
                    return False
                self.changed.wait(min(left, 1.0))
        return True

    # -- what the registry asks ----------------------------------------------------------------
    def shutdown(self) -> None:
        """End every idle kernel now and start no more (the server is exiting)."""
        with self.lock:
            self.closed = True
            idle, self.idle = self.idle, []
            self.changed.notify_all()
        registry.end_all(idle)

    def evict(self) -> PooledKernel | None:
        """Remove the ready idle kernel that has waited longest, for the server's cap (the caller ends it)."""
        with self.lock:
            ready = sorted((kernel for kernel in self.idle if kernel.ready_at is not None), key=lambda kernel: kernel.ready_at or 0.0)
            if not ready:
                return None
            self.idle.remove(ready[0])
            return ready[0]

    @property
    def filling(self) -> bool:
        return self.filler.running

    def held(self) -> int:
        """Idle kernels, ready or starting, that count against the server's cap."""
        with self.lock:
            return len(self.idle) + int(self.starting)


class PoolFiller:
    """Starts a pool's kernels in a thread of its own, one at a time, while the pool has room (its size,
    and the server's cap: registry.claim_room); after MAX_FAILED_STARTS failed starts in a row it pauses
    for a backoff that doubles with each further failure."""

    def __init__(self, pool: KernelPool, failure_backoff: float) -> None:
        self.pool = pool
        self.failure_backoff = failure_backoff
        self.failures = 0  # in a row
        self.paused_until = 0.0  # monotonic: no start before (the failure backoff)
        self.thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None

    def paused(self) -> bool:
        return time.monotonic() < self.paused_until

    def start(self, after: int | None) -> bool:
        """Start filling, once the kernel ``after`` has settled, unless the pool is full, closed, paused or
        filling already; whether it started."""
        pool = self.pool
        with pool.lock:
            if pool.closed or self.thread is not None or len(pool.idle) >= pool.size or self.paused():
                return False
            self.thread = threading.Thread(target=self._fill, args=(after,), name="pyspark-kernel-pool-fill", daemon=True)
            self.thread.start()
        return True

    def _fill(self, after: int | None) -> None:
        pool = self.pool
        if after is not None:
            wait_settled(after, lambda: pool.closed)
        while True:
            with pool.lock:
                full = pool.closed or len(pool.idle) >= pool.size or self.paused()
            if full or not registry.claim_room(pool):
                with pool.changed:
                    self.thread = None
                    pool.changed.notify_all()
                return
            self._start_one()

    def _start_one(self) -> None:
        pool, kernel = self.pool, None
        try:
            env = dict(pool.template.env)
            kernel = PooledKernel.start(pool.template, env, pool.prepare(env))
            with pool.lock:
                pool.idle.append(kernel)
                pool.starting = False
            kernel.wait_warm(lambda: pool.closed)
            with pool.changed:
                self.failures = 0
                pool.changed.notify_all()
            logger.info("pyspark-kernel pool %s: kernel %d ready (%.0f MB, kernel and JVM)", pool.template.name, kernel.pid, kernel.memory_mb())
        except Exception as error:
            self._failed(kernel, error)
        finally:
            with pool.lock:
                pool.starting = False
                ended = pool.closed and kernel is not None
        if ended and kernel is not None:  # shutdown() came while this kernel was starting
            kernel.end()

    def _failed(self, kernel: PooledKernel | None, error: Exception) -> None:
        pool = self.pool
        with pool.lock:
            self.failures += 1
            if kernel is not None and kernel in pool.idle:
                pool.idle.remove(kernel)
            if self.failures >= MAX_FAILED_STARTS:
                pause = min(self.failure_backoff * 2 ** (self.failures - MAX_FAILED_STARTS), MAX_FAILURE_BACKOFF_SECONDS)
                self.paused_until = time.monotonic() + pause
        logger.warning("pyspark-kernel pool %s: a pooled kernel did not become ready: %s", pool.template.name, error)
        if self.failures >= MAX_FAILED_STARTS:
            logger.warning(
                "pyspark-kernel pool %s: %d starts failed in a row; the pool tries again at the first launch after %.0f s",
                pool.template.name,
                self.failures,
                self.paused_until - time.monotonic(),
            )
        if kernel is not None:
            kernel.end()


class IdleCuller:
    """A pool's keeper thread: ends the kernels idle past the pool's timeout and drops dead ones, while the
    pool holds kernels or fills; the next refill starts it again."""

    def __init__(self, pool: KernelPool) -> None:
        self.pool = pool
        self.thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        with self.pool.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="pyspark-kernel-pool-keeper", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        pool = self.pool
        while True:
            with pool.changed:
                pool.changed.wait(min(max(pool.idle_timeout / 4, 0.2), 5.0))
                if pool.closed or (not pool.idle and not pool.filling):
                    self.thread = None
                    return
                now = time.monotonic()
                leaving = [kernel for kernel in pool.idle if not kernel.alive() or (kernel.ready_at is not None and now - kernel.ready_at > pool.idle_timeout)]
                for kernel in leaving:
                    pool.idle.remove(kernel)
            for kernel in leaving:
                logger.info("pyspark-kernel pool %s: kernel %d %s", pool.template.name, kernel.pid, "culled (idle timeout)" if kernel.alive() else "died")
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
    pool = registry.pool_for(template, lambda: KernelPool(template, size, idle_timeout, prepare, failure_backoff), max_idle)
    assert isinstance(pool, KernelPool)  # the registry holds the pools made here, and no others
    return pool


__all__ = ["PER_NOTEBOOK_VARS", "KernelPool", "PooledKernel", "Template", "pool_for", "pools", "shutdown_all", "tree_cpu_seconds", "wait_settled"]
