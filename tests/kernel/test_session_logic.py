"""The session's pure logic, with no JVM: launch arguments, state before any start, interrupt placement."""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import free_port

from pyspark_kernel import submitargs
from pyspark_kernel.kernel.interrupts import in_py4j_call
from pyspark_kernel.kernel.session import ManagedSession, SessionState, derive_state
from pyspark_kernel.kernel.settings import SessionSettings


def conf_of(submit_args: str) -> dict[str, str]:
    return submitargs.parse(submit_args).conf


def test_every_launch_gets_the_notebook_defaults_the_kernelspec_does_not_set() -> None:
    settings = SessionSettings(submit_args="--master 'local[2]' --conf spark.ui.showConsoleProgress=true pyspark-shell", app_name="work/a.ipynb")
    launched = settings.launch_submit_args({})
    conf = conf_of(launched)
    assert conf["spark.ui.showConsoleProgress"] == "true"  # the kernelspec's --conf outranks a default
    assert conf["spark.sql.repl.eagerEval.enabled"] == "true" and conf["spark.app.name"] == "work/a.ipynb"
    assert shlex.split(launched)[-1] == "pyspark-shell" and "--master" in launched


def test_percent_spark_conf_overrides_come_last_and_win() -> None:
    settings = SessionSettings(submit_args="--conf spark.driver.memory=1g pyspark-shell")
    words = shlex.split(settings.launch_submit_args({"spark.driver.memory": "3g"}))
    settings_in_order = [words[i + 1] for i, word in enumerate(words) if word == "--conf" and words[i + 1].startswith("spark.driver.memory=")]
    assert settings_in_order == ["spark.driver.memory=1g", "spark.driver.memory=3g"]  # spark-submit keeps the last


def test_a_new_session_is_not_started_and_has_nothing_to_cancel() -> None:
    session = ManagedSession(SessionSettings(start="none"))
    assert session.state is SessionState.NOT_STARTED and not session.ready
    assert session.backend.cancel_cell(in_jvm_call=True) is None


@pytest.mark.parametrize("answered", [False, True], ids=["before-any-answer", "during-the-handshake"])
def test_a_connect_start_waits_for_the_kernels_client_and_a_stop_before_it_abandons_it(answered: bool) -> None:
    """The Spark Connect client's imports take a second of CPU, which the client's handshake would wait
    for (bench row 7): the start waits for the kernel's answers and a quiet moment after them. Nothing
    listens at the remote here, so a start that had begun would end FAILED at once, not STOPPED."""
    import pyspark.sql  # noqa: F401 (a start that began would then fail in a moment, not import for one)

    session = ManagedSession(SessionSettings(remote=f"sc://127.0.0.1:{free_port()}"))
    session.start()
    if answered:
        session.starter.moment.client_answered()  # the first kernel_info answer; the client is still making sure of IOPub
    else:
        time.sleep(0.5)  # no client has asked yet
    assert session.state is SessionState.STARTING
    session.stop()
    assert session.state is SessionState.STOPPED, session.state


def test_an_interrupt_is_inside_py4j_only_when_a_py4j_frame_is_on_the_stack() -> None:
    py4j_code = compile("def send_command():\n    return sys._getframe()\n", "/site/py4j-0.10.9.9-src.zip/py4j/clientserver.py", "exec")
    namespace: dict = {"sys": sys}
    exec(py4j_code, namespace)
    assert in_py4j_call(namespace["send_command"]())
    assert not in_py4j_call(sys._getframe())
    assert not in_py4j_call(types.SimpleNamespace(f_code=types.SimpleNamespace(co_filename="/home/me/py4j_notes.py"), f_back=None))


def test_the_launch_precheck_takes_a_vendor_build_of_pysparks_release_and_refuses_another_release(tmp_path: Path) -> None:
    """SPARK_HOME's jars say 4.3.0-amzn-0 where pip's pyspark says 4.3.0: one release, not a mismatch.
    precheck is the gate every JVM launch of the kernel passes first (jvm.launch); only the jar's name
    is read here, so no JVM starts. A release that differs is refused, with the reinstall that fixes it."""
    import pyspark

    from pyspark_kernel.environment import SparkEnvironmentError
    from pyspark_kernel.kernel.jvm import precheck

    release = ".".join(pyspark.__version__.split(".")[:3])
    (tmp_path / "jars").mkdir()
    (tmp_path / "jars" / f"spark-core_2.13-{release}-amzn-0.jar").touch()
    precheck({**os.environ, "SPARK_HOME": str(tmp_path)})
    (tmp_path / "jars" / f"spark-core_2.13-{release}-amzn-0.jar").unlink()
    (tmp_path / "jars" / "spark-core_2.13-3.5.9.jar").touch()
    with pytest.raises(SparkEnvironmentError, match=r"holds Spark 3\.5\.9"):
        precheck({**os.environ, "SPARK_HOME": str(tmp_path)})


def test_kernels_starting_together_behind_a_proxy_get_different_ui_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The port goes into proxyBase before Spark binds it: a port that is merely free was picked by both.
    The two picks differ by the lock the first holds (ports.py), not because the first port got bound."""
    from pyspark_kernel import ports

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this test's own lock folder: other kernels' locks play no part
    environ = {"PYSPARK_KERNEL_UI_PROXY": "/user/a/proxy"}
    first, second = SessionSettings.from_environ(environ), SessionSettings.from_environ(environ)
    ports_picked = [settings.defaults["spark.ui.port"] for settings in (first, second)]
    assert ports_picked[0] != ports_picked[1], ports_picked
    assert ports.is_free(int(ports_picked[0])), "the first port is still unbound: only its lock kept the second kernel off it"
    assert sorted(lock.name for lock in ports.lock_folder().iterdir()) == sorted(f"{port}.lock" for port in ports_picked)
    assert ports.lock_folder().parent == tmp_path
    assert first.defaults["spark.ui.proxyBase"] == f"/user/a/proxy/{ports_picked[0]}"
    assert first.ui_port is not None and second.ui_port is not None
    first.ui_port.release()
    third = SessionSettings.from_environ(environ)
    assert third.defaults["spark.ui.port"] == ports_picked[0], "a released port is free again"
    second.ui_port.release()
    third.ui_port.release()  # type: ignore[union-attr]
    assert SessionSettings.from_environ({**environ, "PYSPARK_SUBMIT_ARGS": "--conf spark.ui.port=4999 pyspark-shell"}).ui_port is None


@pytest.mark.parametrize(
    "observed, state",
    [
        (dict(starting=True, jvm_gone=True, live=True, failed=True, ended=True), SessionState.STARTING),
        (dict(starting=False, jvm_gone=True, live=True, failed=False, ended=True), SessionState.JVM_GONE),
        (dict(starting=False, jvm_gone=False, live=True, failed=True, ended=True), SessionState.READY),
        (dict(starting=False, jvm_gone=False, live=False, failed=True, ended=True), SessionState.FAILED),
        (dict(starting=False, jvm_gone=False, live=False, failed=False, ended=True), SessionState.STOPPED),
        (dict(starting=False, jvm_gone=False, live=False, failed=False, ended=False), SessionState.NOT_STARTED),
    ],
)
def test_session_state_precedence(observed: dict, state: SessionState) -> None:
    """A session a user's builder made after a failed start is READY; a JVM that died under it wins."""
    assert derive_state(**observed) is state


# -- the warm-up's decision (warmup.py): free where the master is local, on a cluster only when asked --


@pytest.mark.parametrize("master", ["local", "local[2]", "local[*]", "local[2,3]", "local[*, 4]", "local-cluster[2,1,1024]"])
def test_a_local_master_is_warmed_unless_the_kernelspec_says_off(master: str) -> None:
    from pyspark_kernel.kernel.warmup import worth_warming
    from pyspark_kernel.variables import WARMUP, switch

    assert worth_warming(switch({}, WARMUP), master)
    assert worth_warming(switch({WARMUP.name: "on"}, WARMUP), master)
    assert not worth_warming(switch({WARMUP.name: "off"}, WARMUP), master)


@pytest.mark.parametrize("master", ["yarn", "spark://127.0.0.1:7077", "k8s://https://10.0.0.1:6443", "mesos://h:5050", "localhost:7077", None])
def test_a_cluster_master_is_warmed_only_when_the_kernelspec_says_on(master: str | None) -> None:
    from pyspark_kernel.kernel.warmup import worth_warming
    from pyspark_kernel.variables import WARMUP, switch

    assert not worth_warming(switch({}, WARMUP), master)
    assert worth_warming(switch({WARMUP.name: "on"}, WARMUP), master)
    assert not worth_warming(switch({WARMUP.name: "off"}, WARMUP), master)


# -- which ConnectionError waits for a dying JVM (ipkernel.py's error handler) ---------------------------


def raised(action: Callable[[], object]) -> tuple[BaseException, object]:
    try:
        action()
    except BaseException as error:
        return error, error.__traceback__
    raise AssertionError("did not raise")


def test_a_users_own_refused_connection_is_not_taken_for_the_jvms() -> None:
    import socket

    from pyspark_kernel.kernel.jvm import from_jvm_connection

    error, traceback = raised(lambda: socket.create_connection(("127.0.0.1", free_port()), timeout=5))
    assert isinstance(error, ConnectionRefusedError)
    assert not from_jvm_connection(error, traceback)


def test_a_connection_error_inside_pyspark_or_py4j_is_the_jvms() -> None:
    """A collect reads its result from a socket to the JVM (pyspark.serializers): a reset there, and
    py4j's own network error, may mean a dying JVM."""
    import socket
    import struct

    from py4j.java_gateway import GatewayParameters, JavaGateway
    from pyspark.serializers import read_int

    from pyspark_kernel.kernel.jvm import from_jvm_connection

    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname(), timeout=5)
        peer, _ = server.accept()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()  # a reset, as from a JVM that was killed mid-collect
        with client, client.makefile("rb") as stream:
            error, traceback = raised(lambda: read_int(stream))
    assert isinstance(error, ConnectionResetError)
    assert from_jvm_connection(error, traceback)
    gateway = JavaGateway(gateway_parameters=GatewayParameters(port=free_port(), auth_token="x"))
    try:
        error, traceback = raised(lambda: gateway.jvm.java.lang.System.currentTimeMillis())
    finally:
        gateway.shutdown()
    assert type(error).__name__ == "Py4JNetworkError" and from_jvm_connection(error, traceback)


# -- a kernelspec the kernel cannot read fails the start, in a cell, never the kernel's process ------------

MALFORMED_SUBMIT_ARGS = "--master 'local[2] pyspark-shell"  # an unbalanced quote


def test_unreadable_submit_args_are_kept_as_the_starts_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyspark_kernel.errors import SparkStartError
    from pyspark_kernel.kernel import jvm

    # Behind the server extension's route the settings read PYSPARK_SUBMIT_ARGS at once: that raised.
    settings = SessionSettings.from_environ({"PYSPARK_SUBMIT_ARGS": MALFORMED_SUBMIT_ARGS, "PYSPARK_KERNEL_UI_PROXY": "/user/a/proxy"})
    assert settings.problem is not None and "No closing quotation" in settings.problem.problem
    with pytest.raises(SparkStartError, match="not valid shell syntax") as raised_error:
        jvm.launch(settings, {})
    assert "Fix:" in str(raised_error.value)


def test_no_free_ui_port_is_kept_as_the_starts_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every port of the UI's range held by other kernels: reserve_port raised in the kernel's import."""
    from pyspark_kernel import ports
    from pyspark_kernel.errors import SparkStartError
    from pyspark_kernel.kernel import jvm

    monkeypatch.setattr(ports, "lock_folder", lambda: tmp_path)  # this test's own locks, not other kernels'
    held = [ports.hold(port) for port in range(4040, 4040 + ports.PORT_TRIES)]
    try:
        settings = SessionSettings.from_environ({"PYSPARK_KERNEL_UI_PROXY": "/user/a/proxy"})
    finally:
        for lock in held:
            if lock is not None:
                lock.close()
    assert settings.problem is not None and "No free port for the Spark UI" in settings.problem.problem
    with pytest.raises(SparkStartError, match="No free port for the Spark UI"):
        jvm.launch(settings, {})


def test_prelaunch_begin_never_raises(tmp_path: Path) -> None:
    """__main__ calls begin before ipykernel exists: a raise there killed the kernel (and Jupyter
    restarted it, in a loop). Run as the kernel's process would, with its environment."""
    import subprocess

    import pyspark

    env = {**os.environ, "SPARK_HOME": str(Path(pyspark.__file__).parent), "PYSPARK_SUBMIT_ARGS": MALFORMED_SUBMIT_ARGS}
    code = f"from pyspark_kernel.kernel import prelaunch; prelaunch.begin(['-f', {str(tmp_path / 'kernel-x.json')!r}]); print(prelaunch._early)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"  # no early JVM: the kernel's start meets the problem and shows it
