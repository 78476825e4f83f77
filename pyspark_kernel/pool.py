"""A warm kernel pool: kernels started before anyone asks, their Spark up and warmed, handed out at launch.

Opt-in per kernelspec (``install --pool N``, read by the provisioner from kernel.json's provisioner
config). It lives in the Jupyter server's process, beside the provisioner: the first launch of a pooled
kernelspec starts normally and the pool fills once that kernel has settled (wait_settled); later
launches take a ready kernel, whose connection info the provisioner returns to Jupyter as remote
provisioners do, and tell it what the notebook needs (``hand_over``: working folder, the per-notebook
variables, the notebook's name).

Rules: at most N idle kernels per kernelspec, so the pool never exceeds N plus the kernels in use; a
pooled kernel nobody takes within the idle timeout is shut down (and the pool fills again only at the
next launch); a hand-over and a shutdown refill it in the background. Threads, not asyncio: a blocking
KernelManager runs its event loop only inside its own calls, and a pool must fill between them.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .ports import PortReservation
from .reaper import end_group, end_processes, java_children

# Set per launch by jupyter_server (the notebook's path) and the provisioner (the kernel's id): never part
# of what makes two launches interchangeable, and given to a pooled kernel when it is handed over.
PER_NOTEBOOK_VARS = ("JPY_SESSION_NAME", "PYSPARK_KERNEL_ID")
READY_TIMEOUT_SECONDS = 180.0  # kernel_info, Spark's start and the warm-up, on a loaded 2-core machine
STATE_POLL_SECONDS = 0.5
HAND_OVER_TIMEOUT_SECONDS = 30.0
# A pool fills once the kernel just launched or handed out has settled: its kernel and JVM together used
# under SETTLED_CPU_SHARE of a core over the last SETTLED_WINDOW_SECONDS (its Spark is up, warmed, and its
# first cells have run), or SETTLED_MAX_SECONDS have gone by. A fill that began 5 s after the launch slowed
# that kernel's start to 1.31x the launch without a pool (bench row 9, pool empty).
SETTLED_CPU_SHARE = 0.3
SETTLED_WINDOW_SECONDS = 1.0
SETTLED_MAX_SECONDS = 120.0
MAX_FAILED_STARTS = 2  # in a row: a kernelspec whose kernels cannot start stops being filled
DEFAULT_IDLE_TIMEOUT_SECONDS = 1800.0

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Template:
    """How a pooled kernelspec's kernels start, less what differs per notebook."""

    name: str  # the kernelspec's name, for log lines
    argv: tuple[str, ...]  # kernel.json's argv, with {connection_file} still in it
    env: tuple[tuple[str, str], ...]  # the launch environment, per-notebook variables removed
    cwd: str = field(compare=False)  # where pooled kernels start: the first launch's folder (a hand-over moves them)

    @classmethod
    def of(cls, name: str, argv: list[str], env: dict[str, str], cwd: str | None) -> Template:
        kept = sorted((key, value) for key, value in env.items() if key not in PER_NOTEBOOK_VARS)
        return cls(name, tuple(argv), tuple(kept), cwd or os.getcwd())


@dataclass
class PooledKernel:
    """A kernel process the pool started, with the connection info Jupyter will be given."""

    process: subprocess.Popen[bytes]
    connection_file: Path
    connection_info: dict[str, Any]
    env: dict[str, str]
    ui_port: PortReservation | None
    ready_at: float | None = None
    jvms: dict[int, float] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def memory_mb(self) -> float:
        """Resident memory of the kernel and its JVMs, in MiB: what one idle pooled kernel costs."""
        import psutil

        try:
            processes = [psutil.Process(self.pid), *psutil.Process(self.pid).children(recursive=True)]
            return sum(process.memory_info().rss for process in processes) / 2**20
        except psutil.Error:
            return 0.0

    def end(self) -> None:
        """Stop the kernel, its process group and its JVMs; remove its connection file, free its port."""
        self.jvms.update(java_children(self.pid))
        end_group(self.pid)  # jupyter_client's launch_kernel starts each kernel in a new session: pgid == pid
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        end_processes(self.jvms)
        self.connection_file.unlink(missing_ok=True)
        if self.ui_port is not None:
            self.ui_port.release()


def client_for(kernel: PooledKernel) -> Any:
    from jupyter_client.blocking import BlockingKernelClient

    client = BlockingKernelClient()
    client.load_connection_info(kernel.connection_info)
    client.start_channels()
    return client


def answered_kernel_info(client: Any, kernel: PooledKernel, deadline: float) -> None:
    """Wait for the kernel's first kernel_info reply. (A client without a KernelManager cannot use
    wait_for_ready: it judges a kernel dead by a heartbeat that has not begun yet.)"""
    msg_id = client.kernel_info()
    while time.monotonic() < deadline:
        if not kernel.alive():
            raise RuntimeError(f"the kernel exited with code {kernel.process.returncode} before it answered")
        try:
            reply = client.get_shell_msg(timeout=1.0)
        except Exception:  # queue.Empty: no reply yet; ask again, as wait_for_ready does
            msg_id = client.kernel_info()
            continue
        if reply["parent_header"].get("msg_id") == msg_id or reply["msg_type"] == "kernel_info_reply":
            return
    raise RuntimeError(f"no kernel_info reply within {READY_TIMEOUT_SECONDS:.0f} s")


def silent_execute(client: Any, code: str, timeout: float, **kwargs: Any) -> dict[str, Any]:
    """The execute_reply content of ``code`` run silently (no history, nothing shown), skipping other replies."""
    msg_id = client.execute(code, silent=True, store_history=False, **kwargs)
    deadline = time.monotonic() + timeout
    while True:
        reply = client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


def kernel_state(client: Any) -> str:
    """The pooled kernel's own word on its Spark (PySparkKernel.pool_state), by a silent execute."""
    content = silent_execute(client, "", 30, user_expressions={"state": "get_ipython().kernel.pool_state()"})
    value = content.get("user_expressions", {}).get("state", {})
    return str(value.get("data", {}).get("text/plain", "'failed'")).strip("'")


class KernelPool:
    """Up to ``size`` idle, warmed kernels of one kernelspec (one Template), each kept ``idle_timeout`` s.

    ``prepare(env)`` adds a kernel's own settings to its environment before it starts (the provisioner
    gives each its Spark UI port) and returns the port's reservation, which travels with the kernel.
    """

    def __init__(self, template: Template, size: int, idle_timeout: float, prepare: Callable[[dict[str, str]], PortReservation | None]) -> None:
        self.template = template
        self.size = size
        self.idle_timeout = idle_timeout
        self.prepare = prepare
        self.idle: list[PooledKernel] = []  # started by the pool and not handed out, ready or not
        self._filler: threading.Thread | None = None
        self._failures = 0
        self._closed = False
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
            if self._closed or self._filler is not None or len(self.idle) >= self.size or self._failures >= MAX_FAILED_STARTS:
                return
            self._filler = threading.Thread(target=self._fill, args=(after,), name="pyspark-kernel-pool-fill", daemon=True)
            self._filler.start()
        self._ensure_keeper()

    def hand_over(self, kernel: PooledKernel, cwd: str | None, env: dict[str, str]) -> None:
        """Tell ``kernel`` it now serves the notebook launched with ``cwd`` and ``env``; raises on failure."""
        changed: dict[str, str | None] = {key: env.get(key) for key in set(env) | set(kernel.env) if env.get(key) != kernel.env.get(key)}
        changed.pop("PYSPARK_SUBMIT_ARGS", None)  # differs only by the UI port this kernel already has
        notebook = {"cwd": str(cwd or self.template.cwd), "env": changed}
        client = client_for(kernel)
        try:
            content = silent_execute(client, f"get_ipython().kernel.hand_over({json.dumps(notebook)!r})", HAND_OVER_TIMEOUT_SECONDS)
        finally:
            client.stop_channels()
        if content["status"] != "ok":
            raise RuntimeError(f"hand-over failed: {content.get('ename')}: {content.get('evalue')}")
        kernel.connection_file.unlink(missing_ok=True)  # Jupyter writes its own file for this kernel

    def ready_count(self) -> int:
        with self._lock:
            return sum(1 for kernel in self.idle if kernel.ready_at is not None)

    def wait_ready(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` idle kernels are ready (benchmarks and tests)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(1 for kernel in self.idle if kernel.ready_at is not None) < count:
                left = deadline - time.monotonic()
                gave_up = self._failures >= MAX_FAILED_STARTS and self._filler is None
                if left <= 0 or self._closed or gave_up:
                    return False
                self._changed.wait(min(left, 1.0))
        return True

    def shutdown(self) -> None:
        """End every idle kernel now and start no more (the server is exiting)."""
        with self._lock:
            self._closed = True
            idle, self.idle = self.idle, []
            self._changed.notify_all()
        for kernel in idle:
            kernel.end()

    # -- the pool's own threads ----------------------------------------------------------------
    def _fill(self, after: int | None) -> None:
        if after is not None:
            wait_settled(after, lambda: self._closed)
        while True:
            with self._lock:
                if self._closed or len(self.idle) >= self.size or self._failures >= MAX_FAILED_STARTS:
                    self._filler = None
                    self._changed.notify_all()
                    return
            self._start_one()

    def _start_one(self) -> None:
        kernel = None
        try:
            kernel = self._launch()
            with self._lock:
                self.idle.append(kernel)
            self._wait_warm(kernel)
            with self._changed:
                self._failures = 0
                self._changed.notify_all()
            logger.info("pyspark-kernel pool %s: kernel %d ready (%.0f MB, kernel and JVM)", self.template.name, kernel.pid, kernel.memory_mb())
        except Exception as error:
            logger.warning("pyspark-kernel pool %s: a pooled kernel did not become ready: %s", self.template.name, error)
            with self._lock:
                self._failures += 1
                if kernel is not None and kernel in self.idle:
                    self.idle.remove(kernel)
            if kernel is not None:
                kernel.end()
        with self._lock:
            ended = self._closed and kernel is not None and kernel.alive()
        if ended:  # shutdown() came while this kernel was starting
            kernel.end()

    def _launch(self) -> PooledKernel:
        from jupyter_client.connect import write_connection_file
        from jupyter_client.launcher import launch_kernel
        from jupyter_core.paths import jupyter_runtime_dir

        runtime = Path(jupyter_runtime_dir())
        runtime.mkdir(parents=True, exist_ok=True)
        connection_file = runtime / f"pyspark-pool-{uuid.uuid4().hex[:12]}.json"
        key = uuid.uuid4().hex.encode()
        _, info = write_connection_file(str(connection_file), ip="127.0.0.1", key=key, transport="tcp", kernel_name=self.template.name)
        env = dict(self.template.env)
        env.setdefault("PYSPARK_KERNEL_WARMUP", "on")  # a pooled kernel is warm when it is handed out
        ui_port = self.prepare(env)
        argv = [arg.replace("{connection_file}", str(connection_file)) for arg in self.template.argv]
        process = launch_kernel(argv, env=env, cwd=self.template.cwd)
        info = {**info, "key": key}
        return PooledKernel(process, connection_file, info, env, ui_port)

    def _wait_warm(self, kernel: PooledKernel) -> None:
        client = client_for(kernel)
        try:
            deadline = time.monotonic() + READY_TIMEOUT_SECONDS
            answered_kernel_info(client, kernel, deadline)
            while time.monotonic() < deadline and not self._closed:
                state = kernel_state(client)
                kernel.jvms.update(java_children(kernel.pid))
                if state == "warm":
                    kernel.ready_at = time.monotonic()
                    return
                if state == "failed":
                    raise RuntimeError("its Spark did not start (see the kernel's -spark.log in Jupyter's runtime folder)")
                time.sleep(STATE_POLL_SECONDS)
            raise RuntimeError("the pool was shut down" if self._closed else f"not warm within {READY_TIMEOUT_SECONDS:.0f} s")
        finally:
            client.stop_channels()

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
                if self._closed or (not self.idle and self._filler is None):
                    self._keeper = None
                    return
                now = time.monotonic()
                leaving = [kernel for kernel in self.idle if not kernel.alive() or (kernel.ready_at is not None and now - kernel.ready_at > self.idle_timeout)]
                for kernel in leaving:
                    self.idle.remove(kernel)
            for kernel in leaving:
                logger.info("pyspark-kernel pool %s: kernel %d %s", self.template.name, kernel.pid, "culled (idle timeout)" if kernel.alive() else "died")
                kernel.end()


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds used so far by ``pid`` and the processes under it (its JVM), or None once it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def wait_settled(pid: int, closed: Callable[[], bool], most: float = SETTLED_MAX_SECONDS) -> None:
    """Wait until the kernel ``pid`` has settled (see SETTLED_CPU_SHARE), is gone, or ``most`` s went by."""
    deadline = time.monotonic() + most
    before = tree_cpu_seconds(pid)
    while before is not None and time.monotonic() < deadline and not closed():
        time.sleep(SETTLED_WINDOW_SECONDS)
        now = tree_cpu_seconds(pid)
        if now is None or now - before < SETTLED_CPU_SHARE * SETTLED_WINDOW_SECONDS:
            return
        before = now


_pools: dict[Template, KernelPool] = {}
_pools_lock = threading.Lock()


def pool_for(template: Template, size: int, idle_timeout: float, prepare: Callable[[dict[str, str]], PortReservation | None]) -> KernelPool:
    """The pool of this kernelspec's template, made on first use."""
    with _pools_lock:
        pool = _pools.get(template)
        if pool is None or pool._closed:
            pool = _pools[template] = KernelPool(template, size, idle_timeout, prepare)
        return pool


def pools() -> list[KernelPool]:
    with _pools_lock:
        return list(_pools.values())


@atexit.register
def shutdown_all() -> None:
    """End every pooled kernel: at the server's exit, and for tests and benchmarks."""
    with _pools_lock:
        every = list(_pools.values())
        _pools.clear()
    for pool in every:
        pool.shutdown()
