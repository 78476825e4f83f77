"""One kernel of the warm pool (pool.py): how it starts, gets warm, is handed over and ends.

Each pooled kernel is started by its own jupyter_client KernelManager, set up like the server's
KernelManager that launched its kernelspec (transport, address, signing, ``transport_encryption``),
with a plain LocalProvisioner (this package's provisioner would pool again). So a pooled kernel gets
what a fresh one gets: ports from jupyter_client's port cache, a connection file jupyter_client wrote,
and CurveZMQ keys whenever the server encrypts kernels' channels. At the hand-over the server's
KernelManager receives the whole connection info (signing key and curve keys included) and the cached
ports go with it, so a pooled kernel is exactly as protected as one started for the notebook.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import KernelManager

from pyspark_kernel.ports import PortReservation
from pyspark_kernel.server.reaper import end_group, end_processes, java_children

# Set per launch by jupyter_server (the notebook's path): never part of what makes two launches
# interchangeable, and given to a pooled kernel when it is handed over.
PER_NOTEBOOK_VARS = ("JPY_SESSION_NAME",)
# The launching KernelManager's settings a pooled kernel's own manager copies: where its channels listen
# and how they are protected. Part of the pool's key, so a launch never gets a kernel set up otherwise.
MANAGER_SETTINGS = ("transport", "ip", "transport_encryption", "cache_ports", "shutdown_wait_time")
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


@dataclass(frozen=True)
class Template:
    """How a pooled kernelspec's kernels start, less what differs per notebook: the pool's key."""

    name: str  # the kernelspec's display name, for log lines
    argv: tuple[str, ...]  # the launch command, with {connection_file} still in it
    env: tuple[tuple[str, str], ...]  # the launch environment, per-notebook variables removed
    manager: tuple[tuple[str, Any], ...]  # MANAGER_SETTINGS and the signature scheme of the launching manager
    encryption: tuple[str, ...] = ()  # the kernelspec's metadata.supported_encryption
    cwd: str = field(default="", compare=False)  # where pooled kernels start: the first launch's folder

    @classmethod
    def of(cls, spec: KernelSpec, launcher: KernelManager | None, argv: list[str], env: dict[str, str], cwd: str | None) -> Template:
        kept = sorted((key, value) for key, value in env.items() if key not in PER_NOTEBOOK_VARS)
        settings: list[tuple[str, Any]] = []
        if launcher is not None:
            settings = [(name, getattr(launcher, name)) for name in MANAGER_SETTINGS if launcher.has_trait(name)]
            settings.append(("signature_scheme", launcher.session.signature_scheme))
        supported = (spec.metadata or {}).get("supported_encryption") or ()
        encryption = (supported,) if isinstance(supported, str) else tuple(str(item) for item in supported)
        return cls(spec.display_name, tuple(argv), tuple(kept), tuple(settings), encryption, cwd or os.getcwd())

    def kernel_spec(self) -> KernelSpec:
        """The kernelspec a pooled kernel's manager starts: this command and environment, already resolved
        by the provisioner's launch (its env entries are not applied a second time)."""
        metadata = {"supported_encryption": list(self.encryption)} if self.encryption else {}
        return KernelSpec(argv=list(self.argv), display_name=self.name, language="python", env={}, metadata=metadata)


class PooledKernelManager(KernelManager):  # type: ignore[misc]
    """A KernelManager whose kernelspec is a Template's (see Template.kernel_spec), not one found on disk."""

    def __init__(self, spec: KernelSpec, **kwargs: Any) -> None:
        self._pooled_spec = spec
        super().__init__(**kwargs)

    @property
    def kernel_spec(self) -> KernelSpec:
        return self._pooled_spec


@dataclass
class PooledKernel:
    """A kernel the pool started, with the KernelManager that started it (until the hand-over)."""

    manager: KernelManager = field(repr=False)
    env: dict[str, str] = field(repr=False)  # may hold secrets: never in a log line
    ui_port: PortReservation | None
    ready_at: float | None = None
    jvms: dict[int, float] = field(default_factory=dict)
    ended: bool = False
    _ending: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def start(cls, template: Template, env: dict[str, str], ui_port: PortReservation | None) -> PooledKernel:
        """Start one kernel of ``template`` with ``env`` through its own KernelManager and LocalProvisioner."""
        from jupyter_client.provisioning import LocalProvisioner
        from jupyter_core.paths import jupyter_runtime_dir

        settings = dict(template.manager)
        signature_scheme = settings.pop("signature_scheme", None)
        spec = template.kernel_spec()
        manager = PooledKernelManager(spec, kernel_name=template.name, **settings)
        if signature_scheme:
            manager.session.signature_scheme = signature_scheme
        manager.kernel_id = str(uuid.uuid4())
        runtime = jupyter_runtime_dir()
        os.makedirs(runtime, exist_ok=True)
        manager.connection_file = os.path.join(runtime, f"kernel-{manager.kernel_id}.json")
        manager.provisioner = LocalProvisioner(kernel_id=manager.kernel_id, kernel_spec=spec, parent=manager)
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
    def connection_info(self) -> dict[str, Any]:
        """The kernel's whole connection info (ports, signing key, curve keys) for the server's manager."""
        return dict(self.manager.get_connection_info())

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
        import psutil

        try:
            processes = [psutil.Process(self.pid), *psutil.Process(self.pid).children(recursive=True)]
            return sum(process.memory_info().rss for process in processes) / 2**20
        except (psutil.Error, TypeError):
            return 0.0

    def wait_warm(self, closed: Callable[[], bool]) -> None:
        """Wait until the kernel answers and says its Spark is warm; raises if it fails, dies or takes too long."""
        client = self.client()
        try:
            client.wait_for_ready(timeout=READY_TIMEOUT_SECONDS)
            deadline = time.monotonic() + READY_TIMEOUT_SECONDS
            while time.monotonic() < deadline and not closed():
                state = kernel_state(client)
                self.jvms.update(java_children(self.pid))
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
        if self.pid:
            self.jvms.update(java_children(self.pid))
        try:
            if self.manager.has_kernel:
                self.manager.shutdown_kernel(now=False)  # shutdown_request: Spark stops and cleans its folders
            else:
                self.manager.cleanup_resources(restart=False)
        except Exception as error:  # a manager that cannot finish: end the process group by hand
            logger.warning("pyspark-kernel pool: shutting kernel %s down failed (%s); killing its group", self.pid, error)
            if self.pgid:
                end_group(self.pgid)
        end_processes(self.jvms)
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
