"""The server's warm pools together: one pool per Template, and one cap on idle pooled kernels for all.

A pool is keyed on its launch's whole environment (pooltemplate.Template), so a variable that changes at
every launch (a token or a timestamp that a wrapper or a server extension sets) makes a new pool per
launch, each wanting its N kernels of about 900 MB (kernel and JVM, bench row 9). The cap bounds them
together whatever the keys: before a pool starts a kernel, ``claim_room`` makes room by ending the ready
idle kernels of the pools launched least recently (never of a pool launched more recently than the one
filling, so two pools cannot take turns evicting each other); with no room left, the pool stops filling
and its next launch starts a kernel as if it had no pool.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from pyspark_kernel.server.pooledkernel import PooledKernel
from pyspark_kernel.server.pooltemplate import Template

# Idle pooled kernels in one Jupyter server, all pools together: 4 x about 900 MB = 3.6 GB, what a 16 GB
# laptop or one account's share of a shared server can keep waiting. The provisioner's pool_max_idle
# trait (set in the server's Jupyter config) changes it; the latest launch's value holds.
MAX_IDLE_PER_SERVER = 4
# Empty pools kept for their next launch (their failure backoff and last use go with them); beyond this
# many, the least recently used empty ones are closed and forgotten, and a launch makes them again.
MAX_POOLS_KEPT = 32
END_WAIT_SECONDS = 60.0

logger = logging.getLogger(__name__)


class RegisteredPool(Protocol):
    """What the registry asks of a pool (pool.KernelPool): named here so that the registry needs nothing
    of the pool's module, which imports it."""

    template: Template
    used_at: float  # monotonic, the pool's last launch
    starting: bool  # a start counted against the cap, not yet idle
    closed: bool

    @property
    def filling(self) -> bool: ...

    def held(self) -> int: ...

    def evict(self) -> PooledKernel | None: ...

    def shutdown(self) -> None: ...


_pools: dict[Template, RegisteredPool] = {}
_lock = threading.Lock()
_max_idle = MAX_IDLE_PER_SERVER


def pool_for(template: Template, make: Callable[[], RegisteredPool], max_idle: int = MAX_IDLE_PER_SERVER) -> RegisteredPool:
    """The pool of ``template``, made with ``make`` on first use (or after it was closed), marked as
    launched now; ``max_idle`` becomes the server's cap."""
    global _max_idle
    with _lock:
        _max_idle = max_idle
        pool = _pools.get(template)
        if pool is None or pool.closed:
            pool = _pools[template] = make()
        pool.used_at = time.monotonic()
        forgotten = _forget_unused()
    for old in forgotten:
        old.shutdown()
    return pool


def _forget_unused() -> list[RegisteredPool]:
    """Remove the least recently used empty pools beyond MAX_POOLS_KEPT (under _lock); the caller closes them."""
    empty = sorted((pool for pool in _pools.values() if pool.held() == 0 and not pool.filling), key=lambda pool: pool.used_at)
    forgotten = empty[: max(0, len(_pools) - MAX_POOLS_KEPT)]
    for pool in forgotten:
        del _pools[pool.template]
    return forgotten


def claim_room(pool: RegisteredPool) -> bool:
    """Before ``pool`` starts a kernel: whether the server's idle kernels, this one counted, stay within
    the cap, after ending less recently launched pools' ready idle kernels if needed. On True the start
    is counted (``pool.starting``) until the kernel joins the pool's idle list."""
    evicted: list[PooledKernel] = []
    with _lock:
        others = sorted((other for other in _pools.values() if other is not pool), key=lambda other: other.used_at)
        total = pool.held() + sum(other.held() for other in others)
        for victim in others:
            if total < _max_idle or victim.used_at >= pool.used_at:
                break
            while total >= _max_idle and (kernel := victim.evict()) is not None:
                logger.info(
                    "pyspark-kernel pool %s: kernel %d ended to make room (at most %d idle pooled kernels per server)",
                    victim.template.name,
                    kernel.pid,
                    _max_idle,
                )
                evicted.append(kernel)
                total -= 1
        room = total < _max_idle
        if room:
            pool.starting = True
    end_all(evicted)  # before the new kernel starts: its JVM takes the memory these free
    if not room:
        logger.info("pyspark-kernel pool %s: not filled, %d idle pooled kernels already (the server's cap)", pool.template.name, _max_idle)
    return room


def end_all(kernels: list[PooledKernel]) -> None:
    """End ``kernels`` together (each shutdown waits on its kernel), within END_WAIT_SECONDS."""
    enders = [threading.Thread(target=kernel.end, name="pyspark-kernel-pool-end", daemon=True) for kernel in kernels]
    for ender in enders:
        ender.start()
    deadline = time.monotonic() + END_WAIT_SECONDS
    for ender in enders:
        ender.join(max(0.0, deadline - time.monotonic()))


def pools() -> list[RegisteredPool]:
    with _lock:
        return list(_pools.values())


@atexit.register
def shutdown_all() -> None:
    """End every pooled kernel: at the server's exit, and for tests and benchmarks."""
    global _max_idle
    with _lock:
        _max_idle = MAX_IDLE_PER_SERVER
        every = list(_pools.values())
        _pools.clear()
    for pool in every:
        pool.shutdown()
