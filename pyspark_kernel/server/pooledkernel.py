"""One kernel of the warm pool (pool.py): how it starts, gets warm, is handed over and ends.

A pooled kernel is started by its own KernelManager, set up like the server's KernelManager that launched
its kernelspec (pooltemplate.py). At the hand-over the server's KernelManager receives the whole
connection info (signing key and curve keys included) and the cached ports go with it, so a pooled
kernel is exactly as protected as one started for the notebook.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.manager import KernelManager

from pyspark_kernel import processes
from pyspark_kernel.ports import PortReservation
from pyspark_kernel.server.kerneljvms import KernelJvms
from pyspark_kernel.server.pooltemplate import PooledKernelManager, Template

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

logger = logging.getLogger(__name__)


@dataclass
class PooledKernel:
    """A kernel the pool started, with the KernelManager that started it (until the hand-over)."""

    manager: KernelManager = field(repr=False)
    env: dict[str, str] = field(repr=False)  # may hold secrets: never in a log line
    ui_port: PortReservation | None
    ready_at: float | None = None
    jvms: KernelJvms = field(default_factory=KernelJvms)
    ended: bool = False
    _ending: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def start(cls, template: Template, env: dict[str, str], ui_port: PortReservation | None) -> PooledKernel:
        """Start one kernel of ``template`` with ``env`` through its own KernelManager and LocalProvisioner."""
        manager = PooledKernelManager.for_template(template)
        kernel = cls(manager, env, ui_port)
        try:
            manager.start_kernel(env=env, cwd=template.cwd)
        except BaseException:
            kernel.end()
            raise
        return kernel

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.manager.provisioner.process  # type: ignore[union-attr,no-any-return]

    @property
    def pid(self) -> int:
        return self.manager.provisioner.pid  # type: ignore[union-attr,no-any-return]

    @property
    def pgid(self) -> int | None:
        return self.manager.provisioner.pgid  # type: ignore[union-attr,no-any-return]

    @property
    def connection_info(self) -> KernelConnectionInfo:
        """The kernel's whole connection info (ports, signing key, curve keys) for the server's manager."""
        return self.manager.get_connection_info()

    @property
    def ports_cached(self) -> bool:
        """Whether its ports came from jupyter_client's port cache (to be returned when it ends for good)."""
        return bool(getattr(self.manager.provisioner, "ports_cached", False))

    def alive(self) -> bool:
        return not self.ended and self.process is not None and self.process.poll() is None

    def client(self) -> Any:
        client = self.manager.client()
        client.start_channels()
        return client

    def memory_mb(self) -> float:
        """Resident memory of the kernel and its JVMs, in MiB: what one idle pooled kernel costs."""
        return tree_memory_mb(self.pid)

    def wait_warm(self, closed: Callable[[], bool]) -> None:
        """Wait until the kernel answers and says its Spark is warm; raises if it fails, dies or takes too long."""
        client = self.client()
        try:
            client.wait_for_ready(timeout=READY_TIMEOUT_SECONDS)
            deadline = time.monotonic() + READY_TIMEOUT_SECONDS
            while time.monotonic() < deadline and not closed():
                state = kernel_state(client)
                self.jvms.note(self.pid)
                if state == "warm":
                    self.ready_at = time.monotonic()
                    return
                if state == "failed":
                    raise RuntimeError("its Spark did not start (see the kernel's -spark.log in Jupyter's runtime folder)")
                time.sleep(STATE_POLL_SECONDS)
            raise RuntimeError("the pool was shut down" if closed() else f"not warm within {READY_TIMEOUT_SECONDS:.0f} s")
        finally:
            client.stop_channels()

    def hand_over(self, cwd: str, env: dict[str, str]) -> None:
        """Tell the kernel it now serves the notebook launched with ``cwd`` and ``env``; raises on failure."""
        changed: dict[str, str | None] = {key: env.get(key) for key in set(env) | set(self.env) if env.get(key) != self.env.get(key)}
        changed.pop("PYSPARK_SUBMIT_ARGS", None)  # differs only by the UI port this kernel already has
        notebook = {"cwd": cwd, "env": changed}
        client = self.client()
        try:
            content = silent_execute(client, f"get_ipython().kernel.hand_over({json.dumps(notebook)!r})", HAND_OVER_TIMEOUT_SECONDS)
        finally:
            client.stop_channels()
        if content["status"] != "ok":
            raise RuntimeError(f"hand-over failed: {content.get('ename')}: {content.get('evalue')}")

    def release(self) -> None:
        """After the hand-over the server's manager owns the process, its ports and its connection info:
        close this manager's hold on them (its connection file, control socket, context), not the kernel."""
        self.manager.provisioner.ports_cached = False  # type: ignore[union-attr] # returned by the new owner
        try:
            self.manager.cleanup_resources(restart=False)
        except Exception as error:  # the kernel is handed over all the same; only a file or socket lingers
            logger.warning("pyspark-kernel pool: releasing the pool's hold on kernel %s failed: %s", self.pid, error)

    def end(self) -> None:
        """Shut the kernel down through its manager, then its JVMs; free its ports, files and UI port. Idempotent."""
        with self._ending:
            if self.ended:
                return
            self.ended = True
        self.jvms.note(self.pid)
        try:
            if self.manager.has_kernel:
                self.manager.shutdown_kernel(now=False)  # shutdown_request: Spark stops and cleans its folders
            else:
                self.manager.cleanup_resources(restart=False)
        except Exception as error:  # a manager that cannot finish: end the process group by hand
            logger.warning("pyspark-kernel pool: shutting kernel %s down failed (%s); killing its group", self.pid, error)
            if self.pgid:
                processes.end_group(self.pgid)
        self.jvms.end()
        if self.ui_port is not None:
            self.ui_port.release()


def silent_execute(client: Any, code: str, timeout: float, **kwargs: Any) -> dict[str, Any]:
    """The execute_reply content of ``code`` run silently (no history, nothing shown, no input)."""
    reply = client.execute_interactive(code, silent=True, store_history=False, allow_stdin=False, timeout=timeout, output_hook=lambda message: None, **kwargs)
    return reply["content"]  # type: ignore[no-any-return]


def kernel_state(client: Any) -> str:
    """The pooled kernel's own word on its Spark (PySparkKernel.pool_state), by a silent execute."""
    content = silent_execute(client, "", 30, user_expressions={"state": "get_ipython().kernel.pool_state()"})
    value = content.get("user_expressions", {}).get("state", {})
    return str(value.get("data", {}).get("text/plain", "'failed'")).strip("'")


def tree_memory_mb(pid: int) -> float:
    """Resident memory of ``pid`` and the processes under it, in MiB; 0 once it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        return sum(process.memory_info().rss for process in [root, *root.children(recursive=True)]) / 2**20
    except psutil.Error:
        return 0.0


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
