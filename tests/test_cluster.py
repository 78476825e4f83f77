"""A kernel on a real standalone cluster, and four default kernels on one machine.

The cluster is pip's pyspark itself: a Master and a Worker (1 core, 1g) started with ``bin/spark-class``
on free loopback ports, stopped by PID. The kernel's job must run on the Worker's executor, and after the
kernel shuts down the master must list its application as finished: no application is leaked.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import KernelHarness, free_port, install, java_processes_under, wait_gone

pytestmark = pytest.mark.slow

# Runs in the Python worker: its pid and its ancestors, to tell where the task ran.
WHERE_TASKS_RUN = "sc.parallelize(range(4), 2).map(lambda _: (__import__('os').getpid(), [p.pid for p in __import__('psutil').Process().parents()])).collect()"


@dataclass
class StandaloneCluster:
    url: str  # spark://127.0.0.1:PORT
    ui: str  # http://127.0.0.1:WEBUI
    master: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]

    def state(self) -> dict[str, Any]:
        """The master's JSON (/json/): workers, active and completed applications."""
        with urllib.request.urlopen(f"{self.ui}/json/", timeout=5) as response:
            return json.loads(response.read())


def spark_class(spark_home: Path, log: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """``bin/spark-class`` execs java, so the PID is the JVM's own."""
    with open(log, "ab") as output:
        return subprocess.Popen([str(spark_home / "bin" / "spark-class"), *args], env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_until(predicate: Any, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.5)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in logs if log.exists())
    pytest.fail(f"{what} not within {timeout} s\n{tails}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate by PID (the JVMs' shutdown hooks stop executors), kill if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    work = tmp_path_factory.mktemp("standalone")
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(work),
        "SPARK_WORKER_DIR": str(work / "worker"),
        "SPARK_NO_DAEMONIZE": "1",
    }
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    port, ui_port, worker_port, worker_ui = free_port(), free_port(), free_port(), free_port()
    logs = [work / "master.log", work / "worker.log"]
    master = spark_class(
        spark_home, logs[0], env, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port)
    )
    worker = None
    try:
        found = StandaloneCluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}", master, master)
        wait_until(lambda: found.state()["status"] == "ALIVE", 90, "the master's UI answering ALIVE", logs)
        found.url = found.state()["url"]  # the port it bound: another process may have taken the one picked
        worker = spark_class(
            spark_home,
            logs[1],
            env,
            "org.apache.spark.deploy.worker.Worker",
            found.url,
            "--host",
            "127.0.0.1",
            "--port",
            str(worker_port),
            "--webui-port",
            str(worker_ui),
            "--cores",
            "1",
            "--memory",
            "1g",
            "--work-dir",
            str(work / "worker"),
        )
        found.worker = worker
        wait_until(lambda: found.state()["aliveworkers"] == 1, 90, "the worker registered with the master", logs)
        yield found
    finally:
        for process in (worker, master):
            if process is not None:
                stop(process)


def test_job_runs_on_the_executor_and_the_app_finishes(prefix: Path, cluster: StandaloneCluster) -> None:
    folder = install(
        prefix, "--name", "standalone", "--master", cluster.url, "--conf", "spark.executor.memory=512m", "--env", "SPARK_LOCAL_IP", "127.0.0.1", "--replace"
    )
    kernel = KernelHarness(folder.name)
    jvms: list[psutil.Process] = []
    try:
        app_id = eval(kernel.value("sc.applicationId"))
        assert app_id in [app["id"] for app in cluster.state()["activeapps"]]
        placements = eval(kernel.value(WHERE_TASKS_RUN))
        jvms = kernel.java_children()
        for worker_pid, ancestors in placements:
            assert cluster.worker.pid in ancestors, f"task in {worker_pid} is not under the Worker: {ancestors}"
            assert kernel.pid not in ancestors, "the task ran in the driver's process tree, not on an executor"
        executors = int(kernel.value("len(sc._jsc.sc().statusTracker().getExecutorInfos()) - 1"))
        assert executors >= 1
    finally:
        kernel.shutdown()
    assert wait_gone(jvms, timeout=20) == [], "the kernel's driver JVM outlived it"

    def finished() -> bool:
        state = cluster.state()
        return app_id in [app["id"] for app in state["completedapps"]] and app_id not in [app["id"] for app in state["activeapps"]]

    wait_until(finished, 30, f"application {app_id} listed as completed by the master", [])
    completed = next(app for app in cluster.state()["completedapps"] if app["id"] == app_id)
    assert completed["state"] == "FINISHED", completed
    executors_left = [child for child in psutil.Process(cluster.worker.pid).children(recursive=True) if "java" in child.name()]
    assert wait_gone(executors_left, timeout=20) == [], "an executor of the finished application is still running"


WARMER = "get_ipython().kernel.controller.warmer"
JOBS_RUN = "sc._jsc.sc().statusStore().jobsList(None).size()"  # every job of the application so far


def peek(kernel: KernelHarness, expression: str) -> str:
    """``expression``'s repr through a silent execute, as a variable inspector asks: no cell runs, so
    nothing starts or cancels a warm-up."""
    msg_id = kernel.client.execute("", silent=True, store_history=False, user_expressions={"value": expression})
    while True:
        reply = kernel.client.get_shell_msg(timeout=120)
        if reply["parent_header"].get("msg_id") == msg_id:
            value = reply["content"]["user_expressions"]["value"]
            return value["data"]["text/plain"] if value["status"] == "ok" else repr(value)


def wait_peek(kernel: KernelHarness, expression: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while (seen := peek(kernel, expression)) != "True":
        if time.monotonic() > deadline:
            state = peek(kernel, "get_ipython().kernel.controller.session.state, get_ipython().kernel.controller.session.starter.error")
            pytest.fail(f"{what} not within {timeout} s: {expression} is {seen}; the session: {state}")
        time.sleep(1)


def cluster_spec(prefix: Path, cluster: StandaloneCluster, name: str, *args: str) -> str:
    return install(
        prefix, "--name", name, "--master", cluster.url, "--conf", "spark.executor.memory=512m", "--env", "SPARK_LOCAL_IP", "127.0.0.1", *args, "--replace"
    ).name


def test_an_idle_kernel_on_a_cluster_runs_no_job_before_its_first_cell(prefix: Path, cluster: StandaloneCluster) -> None:
    """The warm-up would ask the cluster for executors nobody wanted and fill its history: on a cluster
    master it runs only when the kernelspec asks (next test)."""
    kernel = KernelHarness(cluster_spec(prefix, cluster, "standalone-idle"))
    try:
        wait_peek(kernel, "get_ipython().kernel.controller.session.ready", 240, "the session up")
        time.sleep(20)  # idle, as a user reading the notebook
        assert peek(kernel, f"{WARMER}.current is None") == "True", "a warm-up ran on the cluster"
        assert kernel.value(JOBS_RUN) == "0", "the idle kernel ran jobs on the cluster before its first cell"
    finally:
        kernel.shutdown()


def test_a_cluster_kernelspec_that_asks_for_the_warm_up_gets_it(prefix: Path, cluster: StandaloneCluster) -> None:
    kernel = KernelHarness(cluster_spec(prefix, cluster, "standalone-warm", "--env", "PYSPARK_KERNEL_WARMUP", "on"))
    try:
        wait_peek(kernel, "get_ipython().kernel.controller.session.ready", 240, "the session up")
        wait_peek(kernel, f"{WARMER}.current is not None and {WARMER}.current.finished.is_set()", 300, "the warm-up's end")
        assert int(kernel.value(JOBS_RUN)) > 0, "PYSPARK_KERNEL_WARMUP=on, yet no warm-up job ran"
    finally:
        kernel.shutdown()


def rss_mb(process: psutil.Process) -> float:
    try:
        return process.memory_info().rss / 2**20
    except psutil.NoSuchProcess:
        return 0.0


def test_four_kernels_at_once_each_with_its_own_ui_port_and_app(default_spec: Path, record_property: Any) -> None:
    kernels: list[KernelHarness] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            kernel = KernelHarness(default_spec.name)
            kernels.append(kernel)
            kernel.value("spark.range(1000).count()")
        except BaseException as error:
            errors.append(error)

    started = time.monotonic()
    starters = [threading.Thread(target=start) for _ in range(4)]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join(300)
    all_up = time.monotonic() - started
    try:
        assert not errors and len(kernels) == 4, errors
        facts = [eval(kernel.value("sc.uiWebUrl, sc.applicationId, sc.parallelize(range(100), 4).sum()")) for kernel in kernels]
        ui_ports = {url.rsplit(":", 1)[1] for url, _, _ in facts}
        app_ids = {app for _, app, _ in facts}
        assert len(ui_ports) == 4 and len(app_ids) == 4, facts
        assert all(total == 4950 for _, _, total in facts)
        memory = []
        for kernel in kernels:
            process = psutil.Process(kernel.pid)
            jvm = sum(rss_mb(java) for java in java_processes_under(kernel.pid))
            memory.append((round(rss_mb(process)), round(jvm)))
        report = {"seconds_until_all_answered": round(all_up, 1), "kernel_and_jvm_rss_mb": memory, "total_mb": sum(kernel + jvm for kernel, jvm in memory)}
        record_property("four_kernels", json.dumps(report))
        print(f"\nfour kernels: {json.dumps(report)}")
        # A default kernel (local[*], 1g driver heap by default) stays well under 1.5 GB with its JVM.
        assert all(kernel + jvm < 1536 for kernel, jvm in memory), memory
    finally:
        for kernel in kernels:
            kernel.shutdown()
