"""The unlucky moments: a stop during a start, a user's own java and sockets, a kernelspec the kernel
cannot read, the gateway's secret during a start. Real kernels, JVMs and processes throughout.

Two tests put a ``sitecustomize`` on the kernel's PYTHONPATH, which Python imports before anything else
of the kernel's process: one records every variable the process puts in its environment (the
``os.putenv`` audit event fires for each os.environ assignment, in any thread), the other makes
``pyspark.sql`` fail to import, a start that fails before it takes the early JVM (a fault injected, as
no kernelspec here can cause that on purpose).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import KernelHarness, free_port, install, wait_gone

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

SLEEP_JAVA = "public class Sleep { public static void main(String[] args) throws Exception { Thread.sleep(600_000); } }\n"

SITECUSTOMIZE = """
import os, sys

PUT = []  # the names this process put in its environment, in order
EVENTS = []  # ("popen", program), ("import", "ipykernel") and ("import", "pyspark"), in order

def _record(event, args):
    if event == "os.putenv":
        PUT.append(os.fsdecode(args[0]))
    elif event == "subprocess.Popen":
        EVENTS.append(("popen", os.path.basename(os.fsdecode(args[1][0])) if args[1] else ""))
    elif event == "import" and args[0] in ("ipykernel", "pyspark") and ("import", args[0]) not in EVENTS:
        EVENTS.append(("import", args[0]))

sys.addaudithook(_record)

if os.environ.get("TEST_BREAK_PYSPARK_SQL"):
    class _Broken:
        def find_spec(self, name, path=None, target=None):
            if name == "pyspark.sql":
                raise ImportError("pyspark.sql broken by the test")
            return None
    sys.meta_path.insert(0, _Broken())
"""


def sleeper(folder: Path) -> Path:
    """A Java program that sleeps ten minutes: what a user might start from a cell (`java Sleep.java`)."""
    source = folder / "Sleep.java"
    source.write_text(SLEEP_JAVA)
    return source


def spec_with(prefix: Path, name: str, folder: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """A kernelspec installed with ``args``, with ``folder`` (holding sitecustomize.py) first on its PYTHONPATH."""
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    spec_folder = install(prefix, "--name", name, *args, "--replace")
    spec = json.loads((spec_folder / "kernel.json").read_text())
    spec["env"]["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), spec["env"].get("PYTHONPATH")]))
    spec["env"].update(env or {})
    (spec_folder / "kernel.json").write_text(json.dumps(spec))
    return spec_folder.name


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"{what} not within {timeout} s")


def listening(port: int) -> bool:
    return any(conn.laddr.port == port and conn.status == psutil.CONN_LISTEN for conn in psutil.net_connections(kind="tcp"))


# -- stop, restart or shutdown during a start ----------------------------------------------------------


ENDS_ONLY_LAUNCHES = """
import subprocess, sys, time
import psutil
from pyspark_kernel.kernel import jvm, prelaunch
from pyspark_kernel.kernel.settings import SessionSettings

user_java = subprocess.Popen(["java", sys.argv[1]])
churn = subprocess.Popen(["bash", "-c", "while :; do /bin/true; done"])  # children born and gone all the time
try:
    for _ in range(200):  # each scan meets processes that exit under it
        jvm.end_child_jvms(grace=0.01)
    assert user_java.poll() is None, "the user's java was ended"
    launched = prelaunch.spawn(SessionSettings(), {}, None, None)  # a real spark-submit, ended mid-start
    deadline = time.monotonic() + 30
    tree = jvm.launch_tree(launched.process.pid)
    while len(tree) < 2 and launched.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # until spark-submit's launcher JVM runs under it (it exits, exec'ing the driver, in well under a second)
        tree = jvm.launch_tree(launched.process.pid)
    jvm.end_child_jvms()
    launched.process.wait(30)
    assert psutil.wait_procs(tree, timeout=30)[1] == [], "a process of the launch outlived its end"
    assert user_java.poll() is None, "the user's java was ended"
    print("ok", len(tree))
finally:
    for process in (user_java, churn):
        process.kill()
"""


def test_ending_the_launches_skips_vanished_processes_and_the_users_java(tmp_path: Path) -> None:
    """What a stop during a start runs: no NoSuchProcess when a process exits mid-scan (spark-submit's
    launcher JVM does), and a java process the user started is not this kernel's to end."""
    import pyspark

    env = {**os.environ, "SPARK_HOME": str(Path(pyspark.__file__).parent), "SPARK_LOCAL_IP": "127.0.0.1"}
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    result = subprocess.run([sys.executable, "-c", ENDS_ONLY_LAUNCHES, str(sleeper(tmp_path))], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.startswith("ok"), result.stderr[-3000:]
    assert int(result.stdout.split()[1]) >= 2, f"the launch was ended before its launcher JVM ran: {result.stdout}"


def test_a_stop_and_a_restart_during_a_start_leave_the_users_java_running(prefix: Path, tmp_path: Path) -> None:
    """The driver waits for a debugger (suspend=y), so a start stays in flight until it is ended: first
    the early JVM's (prelaunch.py), then one the kernel launches itself. (A shutdown ends every child
    of the kernel anyway: ipykernel terminates them all.)"""
    debug_port = free_port()
    options = f"spark.driver.extraJavaOptions=-agentlib:jdwp=transport=dt_socket,server=y,suspend=y,address=127.0.0.1:{debug_port}"
    folder = install(prefix, "--name", "stuck-start", "--conf", options, "--replace")
    kernel = KernelHarness(folder.name)
    try:
        wait_for(lambda: listening(debug_port), 120, "the kernel's driver JVM waiting for its debugger")
        launched = kernel.java_children()
        user_pid = int(kernel.value(f"import subprocess; user_java = subprocess.Popen(['java', {str(sleeper(tmp_path))!r}]); user_java.pid"))
        wait_for(lambda: psutil.pid_exists(user_pid) and "java" in psutil.Process(user_pid).name(), 30, "the user's java")
        stopped = kernel.run("%spark stop", timeout=120)
        assert stopped["reply"]["status"] == "ok", stopped
        assert wait_gone(launched, timeout=30) == [], "the start's JVM outlived %spark stop"
        assert kernel.value("user_java.poll() is None", timeout=60) == "True", "%spark stop ended the user's own java"
        kernel.run("get_ipython().kernel.controller.session.start()")  # a launch of the kernel's own, stuck again
        wait_for(lambda: listening(debug_port), 120, "the new start's driver JVM waiting for its debugger")
        launched = [jvm for jvm in kernel.java_children() if jvm.pid != user_pid]
        assert launched
        # %spark conf restarts the session (during its start) with a driver that does not wait.
        restarted = kernel.run("%spark conf spark.driver.extraJavaOptions=-Dpyspark.kernel.test=1", timeout=300)
        assert restarted["reply"]["status"] == "ok", restarted
        assert wait_gone(launched, timeout=30) == [], "the start's JVM outlived the restart"
        assert kernel.value("spark.range(2).count(), user_java.poll() is None") == "(2, True)", "the restart ended the user's own java"
    finally:
        kernel.shutdown()


# -- a user's own ConnectionError ----------------------------------------------------------------------


def test_a_users_refused_connection_is_shown_as_itself(spark_kernel: KernelHarness) -> None:
    spark_kernel.value("spark.range(1).count()")
    error = spark_kernel.error(f"import socket\nsocket.create_connection(('127.0.0.1', {free_port()}), timeout=10)")
    assert error["ename"] == "ConnectionRefusedError", error


# -- a kernelspec the kernel cannot read -----------------------------------------------------------------


def test_malformed_submit_args_keep_the_kernel_up_and_the_first_cell_says_why(prefix: Path) -> None:
    folder = install(prefix, "--name", "malformed-args", "--replace")
    spec = json.loads((folder / "kernel.json").read_text())
    spec["env"]["PYSPARK_SUBMIT_ARGS"] = "--master 'local[2] pyspark-shell"  # an unbalanced quote
    (folder / "kernel.json").write_text(json.dumps(spec))
    # Under the server extension (server/uiproxy.py) the kernel's settings read the arguments at once.
    kernel = KernelHarness(folder.name, extra_env={"PYSPARK_KERNEL_UI_ROUTE": "/pyspark-ui/"})
    try:
        error = kernel.error("spark.range(1).count()")
        assert error["ename"] == "SparkStartError", error
        assert "PYSPARK_SUBMIT_ARGS" in error["evalue"] and "No closing quotation" in error["evalue"] and "Fix:" in error["evalue"], error
        assert kernel.value("1 + 1") == "2"
        assert kernel.manager.is_alive() and kernel.java_children() == []
    finally:
        kernel.shutdown()


def test_an_early_jvm_the_failed_start_did_not_take_is_ended(prefix: Path, tmp_path: Path) -> None:
    name = spec_with(prefix, "broken-sql", tmp_path, env={"TEST_BREAK_PYSPARK_SQL": "1"})
    kernel = KernelHarness(name)
    try:
        error = kernel.error("spark.range(1).count()")
        assert error["ename"] == "SparkStartError" and "broken by the test" in error["evalue"], error
        assert kernel.value("[e for e in __import__('sitecustomize').EVENTS if e[1] in ('spark-submit', 'pyspark')][0]") == "('popen', 'spark-submit')", (
            "no early JVM was launched"
        )
        assert wait_gone(kernel.java_children(), timeout=30) == [], "the early JVM idles after its kernel's start failed"
    finally:
        kernel.shutdown()


# -- the gateway's secret during a start ---------------------------------------------------------------------


def test_no_start_puts_the_gateway_secret_or_launch_variables_in_the_kernels_environment(prefix: Path, tmp_path: Path) -> None:
    kernel = KernelHarness(spec_with(prefix, "environ-watch", tmp_path))
    watched = {"PYSPARK_GATEWAY_SECRET", "PYSPARK_GATEWAY_PORT", "PYSPARK_SUBMIT_ARGS", "SPARK_SUBMIT_OPTS"}
    try:
        kernel.run("get_ipython().kernel.controller.session.wait_for_start()")
        # The early JVM is spawned before the session's start imports pyspark (pyspark's own launch comes after).
        events = kernel.value("[e for e in __import__('sitecustomize').EVENTS if e[1] in ('spark-submit', 'pyspark')]")
        assert eval(events)[0] == ("popen", "spark-submit"), f"the first start did not use the early JVM: {events}"
        put = set(eval(kernel.value("__import__('sitecustomize').PUT")))
        assert not watched & put, f"the start on the early JVM put these in the kernel's environment: {sorted(watched & put)}"
        assert kernel.value("spark.range(3).count()") == "3"
        kernel.run("%spark restart")  # a launch of the kernel's own, not the early JVM
        assert kernel.value("spark.range(4).count()") == "4"
        put = set(eval(kernel.value("__import__('sitecustomize').PUT")))
        assert not watched & put, f"a restart put these in the kernel's environment: {sorted(watched & put)}"
    finally:
        kernel.shutdown()
