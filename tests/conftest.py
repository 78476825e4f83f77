"""Shared fixtures: an isolated Jupyter, kernelspecs installed with the real CLI, real kernels.

Nothing here is mocked: kernelspecs are written by ``pyspark-kernel install`` into temporary prefixes,
and kernels are started from them by jupyter_client's KernelManager, each running a real JVM.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.manager import KernelManager

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache"
SPARK_359 = "3.5.9"
# The second local account of the two-account tests (secrets, kernel channels, the Spark UI route): real,
# made with useradd, with no home; it runs the system's Python, since the venv's lives under /root.
SECOND_ACCOUNT = "pyspark-probe"
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="session", autouse=True)
def isolated_jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the tests' kernelspecs and runtime files out of the user's Jupyter folders."""
    root = tmp_path_factory.mktemp("jupyter")
    saved = {name: os.environ.get(name) for name in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_PATH", "XDG_CACHE_HOME")}
    os.environ["XDG_CACHE_HOME"] = str(CACHE / "xdg")  # class-data archives: built once, kept across runs like the 3.5.9 Spark
    os.environ["JUPYTER_DATA_DIR"] = str(root / "data")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(root / "runtime")
    os.environ["JUPYTER_CONFIG_DIR"] = str(root / "config")
    os.environ["JUPYTER_PATH"] = str(root / "prefix" / "share" / "jupyter")
    yield root
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def prefix(isolated_jupyter: Path) -> Path:
    """The prefix on JUPYTER_PATH that the shared kernelspecs are installed into."""
    return isolated_jupyter / "prefix"


def cli(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``pyspark-kernel ARGS`` as a user would: a separate process, ``input`` on its stdin (as a pipe
    gives ``--secret-conf`` its values), output captured."""
    return subprocess.run([sys.executable, "-m", "pyspark_kernel", *args], input=input, capture_output=True, text=True, timeout=300, env=env)


def install(prefix: Path, *args: str) -> Path:
    """Install a kernelspec with the CLI into ``prefix`` and return its folder; fail loudly otherwise."""
    result = cli("install", "--prefix", str(prefix), *args)
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[0]
    return Path(line.rsplit(" in ", 1)[1])


@pytest.fixture(scope="session")
def default_spec(prefix: Path) -> Path:
    """The kernelspec a newcomer gets: ``pyspark-kernel install`` on pip's pyspark, default name."""
    return install(prefix, "--replace")


# The application's active jobs as (id, job group), for an assert's message: whose job is still running.
ACTIVE_JOBS = (
    "[(j, (lambda g: g.get() if g.isDefined() else None)(sc._jsc.sc().statusStore().job(j).jobGroup())) for j in sc.statusTracker().getActiveJobsIds()]"
)
# The same, less the warm-up's: idle for RESUME_IDLE_SECONDS after a cell (an interrupted one too), the
# kernel warms on, in its own group, and the next cell cancels it (tests/kernel/test_warmup.py).
ACTIVE_JOBS_BUT_WARM_UP = f"[(j, g) for j, g in {ACTIVE_JOBS} if not (g or '').startswith('pyspark-kernel-warmup')]"


class KernelHarness:
    """A started kernel and its blocking client, with helpers to run code and read what it sent."""

    def __init__(self, kernel_name: str, extra_env: dict[str, str] | None = None, cwd: str | None = None, transport_encryption: str | None = None) -> None:
        """``transport_encryption``: the manager's CurveZMQ policy ("required", "auto", "disabled"),
        as a Jupyter server started with ``--KernelManager.transport_encryption`` sets it."""
        policy = {"transport_encryption": transport_encryption} if transport_encryption else {}
        self.manager = KernelManager(kernel_name=kernel_name, **policy)
        env = {**os.environ, **(extra_env or {})}
        self.manager.start_kernel(env=env, **({"cwd": cwd} if cwd else {}))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120 if transport_encryption else 60)

    def connection_info(self) -> dict[str, Any]:
        """The kernel's connection file as written (ports, key, CurveZMQ keys when provisioned)."""
        import json

        return json.loads(Path(self.manager.connection_file).read_text())  # type: ignore[no-any-return]

    @property
    def pid(self) -> int:
        return self.manager.provisioner.process.pid  # type: ignore[union-attr]

    def run(self, code: str, timeout: float = 300) -> dict[str, Any]:
        """Execute ``code``; return the reply and every output the cell produced, in order."""
        msg_id = self.client.execute(code)
        outputs: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            message = self.client.get_iopub_msg(timeout=max(1, deadline - time.monotonic()))
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind in ("stream", "display_data", "execute_result", "error", "update_display_data"):
                outputs.append({"type": kind, **content})
        reply = self.client.get_shell_msg(timeout=max(1, deadline - time.monotonic()))
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.client.get_shell_msg(timeout=max(1, deadline - time.monotonic()))
        return {"reply": reply["content"], "outputs": outputs}

    def value(self, code: str, timeout: float = 300) -> str:
        """The text/plain result of an expression; fails the test with the error if it raised."""
        result = self.run(code, timeout)
        errors = [output for output in result["outputs"] if output["type"] == "error"]
        assert not errors, "\n".join(errors[0]["traceback"])
        results = [output for output in result["outputs"] if output["type"] == "execute_result"]
        assert results, f"{code!r} returned nothing: {result}"
        return results[-1]["data"]["text/plain"]

    def error(self, code: str, timeout: float = 300) -> dict[str, Any]:
        """The error output of ``code``, which is expected to raise."""
        result = self.run(code, timeout)
        errors = [output for output in result["outputs"] if output["type"] == "error"]
        assert errors, f"{code!r} did not raise: {result}"
        return errors[0]

    def interrupt(self, code: str, delay: float) -> dict[str, Any]:
        """Send ``code``, interrupt the kernel ``delay`` s after the request, return the execute_reply."""
        msg_id = self.client.execute(code, stop_on_error=False)  # the next test cell must not be aborted
        time.sleep(delay)
        self.manager.interrupt_kernel()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            reply = self.client.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]
        raise AssertionError("no execute_reply after the interrupt")

    def java_children(self) -> list[psutil.Process]:
        return java_processes_under(self.pid)

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)


def java_processes_under(pid: int) -> list[psutil.Process]:
    """The java processes descended from ``pid``: the JVMs a kernel started."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [child for child in children if "java" in child.name()]


def wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` s for ``processes`` to exit; return the ones still alive."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return alive


def start_together(kernel_name: str, count: int) -> list[KernelHarness]:
    """``count`` kernels of ``kernel_name`` started at once, from threads, as a crowd of notebooks would."""
    import threading

    kernels: list[KernelHarness] = []
    starters = [threading.Thread(target=lambda: kernels.append(KernelHarness(kernel_name))) for _ in range(count)]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join(300)
    return kernels


def connect_kernel_of(prefix: Path, connect_server: str, name: str) -> Iterator[KernelHarness]:
    """A module's own Spark Connect kernel on the session's server (``yield from`` in a fixture): kernels
    of different modules do not share session state."""
    folder = install(prefix, "--name", name, "--remote", connect_server, "--replace")
    kernel = KernelHarness(folder.name)
    try:
        yield kernel
    finally:
        kernel.shutdown()


@contextlib.contextmanager
def spark_conf_set(kernel: KernelHarness, key: str, value: str, restore: str) -> Iterator[None]:
    """``spark.conf.set(key, value)`` in the kernel for the block, then ``restore``."""
    kernel.run(f"spark.conf.set({key!r}, {value})")
    try:
        yield
    finally:
        kernel.run(f"spark.conf.set({key!r}, {restore})")


@pytest.fixture(scope="session")
def spark_kernel(default_spec: Path) -> Iterator[KernelHarness]:
    """One default PySpark kernel shared by the tests that only read from it."""
    harness = KernelHarness(default_spec.name)
    yield harness
    harness.shutdown()


@pytest.fixture(scope="session")
def spark_359_home() -> Path:
    """A second Spark (3.5.9) in pip's layout, as a cluster install beside pip's pyspark 4.3; cached."""
    target = CACHE / f"pyspark-{SPARK_359}"
    home = target / "pyspark"
    if not (home / "jars").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), f"pyspark=={SPARK_359}"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            pytest.fail(f"could not install pyspark=={SPARK_359} from PyPI: {result.stderr[-500:]}")
    return home


@pytest.fixture(scope="session")
def second_account() -> str:
    """Another local account of this machine (made once with useradd); its name.

    Where the tests cannot act as another account, each test that needs one is skipped with a reason
    that names what is missing (``pytest -rs`` lists them; make test passes -rs). Under CI (CI=true) it
    fails instead: these tests are the proof of what the security model promises, and a CI run that
    lost them would still look green."""
    import shutil

    needs = {
        f"root (this run's euid is {os.geteuid()})": os.geteuid() == 0,
        "runuser": shutil.which("runuser") is not None,
        "useradd": shutil.which("useradd") is not None,
        SYSTEM_PYTHON: Path(SYSTEM_PYTHON).is_file(),
    }
    require(needs, "acting as a second local account needs {}: run the suite as root (make test does)")
    if subprocess.run(["id", SECOND_ACCOUNT], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", SECOND_ACCOUNT], check=True, capture_output=True)
    return SECOND_ACCOUNT


def require(needs: dict[str, bool], reason: str) -> None:
    """Skip the test, saying what is missing (``reason`` with a ``{}`` for the list), unless every need is
    met; under CI (CI=true) fail instead: these tests are proofs a green CI run must not quietly lose."""
    missing = [need for need, met in needs.items() if not met]
    if missing:
        message = reason.format(", ".join(missing))
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; not skipped under CI=true")
        pytest.skip(message)


def as_second_account(command: list[str], timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as the second account (the ``second_account`` fixture must have made it)."""
    return subprocess.run(["runuser", "-u", SECOND_ACCOUNT, "--", *command], capture_output=True, text=True, timeout=timeout, **kwargs)


# Run by the second account's system Python (Debian's python3-zmq): subscribes to every iopub message of
# the port it is given, says "ready" once connected, reads until its stdin closes, then prints what it
# read as JSON. The port comes on the command line: any account sees listening ports (ss -ltn), while
# the connection file is 0600.
IOPUB_SPY = """
import json, select, sys, zmq
socket = zmq.Context().socket(zmq.SUB)
socket.setsockopt(zmq.SUBSCRIBE, b"")
socket.connect("tcp://127.0.0.1:%d" % int(sys.argv[1]))
print("ready", flush=True)
poller = zmq.Poller()
poller.register(socket, zmq.POLLIN)
frames = []
while not select.select([sys.stdin], [], [], 0)[0]:
    if poller.poll(200):
        frames.extend(part.decode("utf-8", "replace") for part in socket.recv_multipart())
print(json.dumps(frames))
"""


@pytest.fixture(scope="session")
def spy_account(second_account: str) -> str:
    """The second account, whose system Python must import zmq (Debian's python3-zmq) to run IOPUB_SPY."""
    if as_second_account([SYSTEM_PYTHON, "-c", "import zmq"]).returncode != 0:
        pytest.skip(f"{SYSTEM_PYTHON} cannot import zmq for the second account: apt-get install python3-zmq (scripts/ensure-system.sh --two-accounts does)")
    return second_account


def spied_frames(kernel: KernelHarness, marker: str, cells: int = 3) -> list[str]:
    """Run ``cells`` cells printing ``marker`` (the owner's client must read each) while the second
    account's IOPUB_SPY listens on the kernel's iopub port; the frames the spy read."""
    import json

    spy = subprocess.Popen(
        ["runuser", "-u", SECOND_ACCOUNT, "--", SYSTEM_PYTHON, "-c", IOPUB_SPY, str(kernel.manager.iopub_port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert spy.stdout is not None and spy.stdout.readline().strip() == "ready", spy.stderr.read() if spy.stderr else ""
        time.sleep(1)  # a SUB socket's subscription reaches the publisher after the handshake
        for cell in range(cells):
            outputs = kernel.run(f"print({marker!r}, {cell})")["outputs"]
            assert [output.get("text") for output in outputs] == [f"{marker} {cell}\n"], outputs
        time.sleep(1)
        out, err = spy.communicate(input="done\n", timeout=120)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait(30)
    assert spy.returncode == 0, err
    return json.loads(out.splitlines()[-1])  # type: ignore[no-any-return]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_connect_server(work: Path) -> Iterator[str]:
    """A Spark Connect server from pip's pyspark on 127.0.0.1; yields its sc:// URL, stops it by PID.
    Shared by the tests (fixture below) and bench/run.py."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    port = free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home),
        "SPARK_LOG_DIR": str(work),
        "SPARK_PID_DIR": str(work),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    }  # Python UDFs run in the server's workers: this Python has pandas and pyarrow
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    subprocess.run(
        [
            str(spark_home / "sbin" / "start-connect-server.sh"),
            "--master",
            "local[2]",
            "--conf",
            "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf",
            f"spark.connect.grpc.binding.port={port}",
            "--conf",
            "spark.ui.enabled=false",
        ],
        env=env,
        cwd=work,  # the server resolves a notebook's relative paths against its own folder: not the checkout
        check=True,
        capture_output=True,
        timeout=120,
    )
    pid_files = list(work.glob("*.pid"))
    pid = int(pid_files[0].read_text()) if pid_files else None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            listening = pid and any(conn.laddr.port == port for conn in psutil.Process(pid).net_connections(kind="tcp") if conn.status == psutil.CONN_LISTEN)
            if listening:
                break
            time.sleep(0.5)
        else:
            logs = "\n".join(path.read_text()[-2000:] for path in work.glob("*.out"))
            raise RuntimeError(f"the Spark Connect server did not listen on 127.0.0.1:{port} within 90 s\n{logs}")
        yield f"sc://127.0.0.1:{port}"
    finally:
        subprocess.run([str(spark_home / "sbin" / "stop-connect-server.sh")], env=env, capture_output=True, timeout=120)
        if pid and psutil.pid_exists(pid):
            process = psutil.Process(pid)
            process.terminate()
            if wait_gone([process], timeout=15):
                process.kill()


@pytest.fixture(scope="session")
def connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server for the tests that need one."""
    with running_connect_server(tmp_path_factory.mktemp("connect-server")) as url:
        yield url
