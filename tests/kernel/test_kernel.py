"""The kernel with a real JVM, started from a prefix-installed kernelspec through jupyter_client."""

from __future__ import annotations

import json
import socket
import struct
import time
from pathlib import Path

import psutil
import pytest
from conftest import KernelHarness, install, wait_gone

pytestmark = pytest.mark.slow


def test_fresh_kernel_answers_at_once_then_spark_is_ready_and_leaves_no_jvm(default_spec: Path) -> None:
    kernel = KernelHarness(default_spec.name)
    try:
        assert kernel.value("spark.range(10).count()") == "10"
        assert kernel.value("sc.master") == "'local[*]'"
        assert kernel.value("type(spark).__name__, type(sc).__name__") == "('SparkSession', 'SparkContext')"
        assert kernel.value("from pyspark.sql import SparkSession; isinstance(spark, SparkSession)") == "True"
        jvms = kernel.java_children()
        assert jvms, "a running kernel in eager mode has its JVM"
    finally:
        kernel.shutdown()
    assert wait_gone(jvms, timeout=15) == [], "a java process outlived its kernel"


def resume_suspended_jvm(port: int, timeout: float = 60.0) -> None:
    """Attach to a JVM started with jdwp suspend=y and resume it (JDWP VirtualMachine.Resume, 1/9)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            debugger = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    with debugger:
        debugger.sendall(b"JDWP-Handshake")
        assert debugger.recv(14) == b"JDWP-Handshake"
        debugger.sendall(struct.pack(">IIBBB", 11, 1, 0, 1, 9))
        debugger.recv(11)


def test_the_kernel_answers_and_runs_cells_while_spark_is_still_starting(prefix: Path) -> None:
    """The driver JVM is held at its first instruction (a debugger's suspend=y), so Spark is certainly
    still starting: kernel_info was answered (the harness waits for it), cells run, ``spark`` says it
    waits; once the JVM is let go, the same kernel counts."""
    from conftest import free_port

    port = free_port()
    suspend = f"-agentlib:jdwp=transport=dt_socket,server=y,suspend=y,address=127.0.0.1:{port}"
    folder = install(prefix, "--name", "held-start", "--no-cds", "--conf", f"spark.driver.extraJavaOptions={suspend}", "--replace")
    kernel = KernelHarness(folder.name)
    try:
        assert kernel.value("get_ipython().kernel.controller.session.state.value") == "'starting'"
        assert kernel.value("sum(range(5))") == "10"
        assert kernel.value("repr(spark)").startswith("'<spark: Spark is starting")
        resume_suspended_jvm(port)
        assert kernel.value("spark.range(10).count()") == "10"
    finally:
        kernel.shutdown()


def test_first_cell_shows_version_master_app_and_ui(default_spec: Path) -> None:
    kernel = KernelHarness(default_spec.name)
    try:
        result = kernel.run("n = spark.range(5).count()")
        banner = [out["data"]["text/plain"] for out in result["outputs"] if out["type"] == "display_data" and out["metadata"].get("pyspark_kernel") == "banner"]
        assert len(banner) == 1, result
        app_id = kernel.value("sc.applicationId").strip("'")
        ui = kernel.value("sc.uiWebUrl").strip("'")
        import pyspark

        assert banner[0] == f"Spark {pyspark.__version__} · master local[*] · app {app_id} · Spark UI {ui}"
        later = kernel.run("n")
        assert [out for out in later["outputs"] if out["type"] == "display_data"] == [], "the banner shows once"
    finally:
        kernel.shutdown()


def test_dataframes_sql_and_pandas_work_out_of_the_box(spark_kernel: KernelHarness) -> None:
    assert spark_kernel.value("spark.sql('select 1 + 1 as two').collect()[0].two") == "2"
    assert spark_kernel.value("spark.range(3).toPandas()['id'].tolist()") == "[0, 1, 2]"
    code = (
        "import pandas as pd\n"
        "from pyspark.sql.functions import pandas_udf\n"
        "@pandas_udf('long')\n"
        "def plus_one(s: pd.Series) -> pd.Series:\n"
        "    return s + 1\n"
        "sorted(r[0] for r in spark.range(3).select(plus_one('id')).collect())"
    )
    assert spark_kernel.value(code) == "[1, 2, 3]"
    assert spark_kernel.value("spark.conf.get('spark.ui.showConsoleProgress')") == "'false'"


def test_local_mode_listens_on_loopback_only(spark_kernel: KernelHarness) -> None:
    spark_kernel.value("spark.range(1).count()")
    processes = [psutil.Process(spark_kernel.pid)] + spark_kernel.java_children()
    listening = [conn for process in processes for conn in process.net_connections(kind="tcp") if conn.status == psutil.CONN_LISTEN]
    assert listening, "the kernel listens on its ZeroMQ ports and the JVM on its gateway, driver and UI ports"
    assert {conn.laddr.ip for conn in listening} <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, listening


def test_start_none_runs_no_jvm(prefix: Path) -> None:
    folder = install(prefix, "--name", "nostart", "--start", "none", "--replace")
    kernel = KernelHarness(folder.name)
    try:
        assert kernel.value("import pyspark; pyspark.__version__").startswith("'4.")
        assert kernel.error("spark.range(1)")["ename"] == "NameError"
        assert kernel.java_children() == []
    finally:
        kernel.shutdown()


def test_a_pyspark_folder_or_a_foreign_gateway_in_the_environment_changes_nothing(prefix: Path, tmp_path: Path) -> None:
    """The notebook's folder holds a package named pyspark (IPython puts the working folder on
    sys.path), and the server was started from a pyspark driver, whose gateway variables it passes on:
    the kernel still imports the kernelspec's pyspark and will launch its own JVM."""
    folder = install(prefix, "--name", "nostart-cwd", "--start", "none", "--replace")
    shadow = tmp_path / "notebooks"
    (shadow / "pyspark").mkdir(parents=True)
    (shadow / "pyspark" / "__init__.py").write_text('raise ImportError("the pyspark folder beside the notebook was imported")\n')
    kernel = KernelHarness(folder.name, extra_env={"PYSPARK_GATEWAY_PORT": "1", "PYSPARK_GATEWAY_SECRET": "not-ours"}, cwd=str(shadow))
    try:
        assert kernel.value("import os; os.getcwd()") == repr(str(shadow))
        assert kernel.value("import pyspark; pyspark.__file__").strip("'") == str(Path(pyspark_file()).resolve())
        assert kernel.value("[name for name in os.environ if name.startswith('PYSPARK_GATEWAY')]") == "[]"
    finally:
        kernel.shutdown()


def pyspark_file() -> str:
    import pyspark

    return pyspark.__file__


def test_start_lazy_starts_on_first_use(prefix: Path) -> None:
    folder = install(prefix, "--name", "lazystart", "--start", "lazy", "--replace")
    kernel = KernelHarness(folder.name)
    try:
        assert kernel.java_children() == []
        assert kernel.value("get_ipython().kernel.controller.session.state.value") == "'not started'"
        assert kernel.value("sc.parallelize(range(4)).sum()") == "6"
        jvms = kernel.java_children()
        assert jvms
    finally:
        kernel.shutdown()
    assert wait_gone(jvms, timeout=15) == []


def broken_copy(prefix: Path, name: str, **env: str | None) -> str:
    """A kernelspec whose environment broke after install (as when SPARK_HOME or Java is removed)."""
    folder = install(prefix, "--name", name, "--replace")
    spec = json.loads((folder / "kernel.json").read_text())
    for key, value in env.items():
        if value is None:
            spec["env"].pop(key, None)
        else:
            spec["env"][key] = value
    (folder / "kernel.json").write_text(json.dumps(spec))
    return folder.name


@pytest.mark.parametrize(
    "name, env, needles",
    [
        ("gone-home", {"SPARK_HOME": "/nonexistent/spark"}, ["SPARK_HOME /nonexistent/spark does not exist", "Fix:"]),
        ("no-java", {"PATH": "/nonexistent/bin", "JAVA_HOME": None}, ["Java not found", "Fix: install Java"]),
    ],
)
def test_kernel_whose_spark_cannot_start_stays_up_and_says_why(prefix: Path, name: str, env: dict, needles: list[str]) -> None:
    kernel = KernelHarness(broken_copy(prefix, name, **env), extra_env={"JAVA_HOME": ""} if "JAVA_HOME" in env else None)
    try:
        error = kernel.error("spark.range(1).count()")
        assert error["ename"] == "SparkStartError"
        for needle in needles:
            assert needle in error["evalue"]
        assert kernel.value("1 + 1") == "2", "the kernel stays usable for Python"
        kernel.client.kernel_info(reply=True, timeout=10)
    finally:
        kernel.shutdown()


def test_driver_memory_beyond_the_machine(prefix: Path) -> None:
    folder = install(prefix, "--name", "hugeheap", "--driver-memory", "100000g", "--replace")
    kernel = KernelHarness(folder.name)
    try:
        error = kernel.error("sc.parallelize([1]).count()")
        assert error["ename"] == "SparkStartError"
        assert "could not get the heap" in error["evalue"] and "lower --driver-memory" in error["evalue"]
        assert kernel.value("2 * 21") == "42"
    finally:
        kernel.shutdown()


def test_spark_magic_runs_only_its_subcommands_and_the_error_handler_survives_its_own_faults(prefix: Path) -> None:
    folder = install(prefix, "--name", "nostart-magics", "--start", "none", "--replace")
    kernel = KernelHarness(folder.name)
    try:
        usage = kernel.run("%spark load_config")["outputs"]
        assert usage[0]["text"].startswith("%spark                   status"), usage  # not traitlets' _load_config
        # Make the kernel's py4j-error handler fail: IPython unregisters a handler that raises.
        kernel.run("import pyspark_kernel.kernel.cellerrors as E\nE.interrupted = lambda error: 1 / 0")
        for _ in range(2):
            error = kernel.error("from py4j.protocol import Py4JError\nraise Py4JError('boom')")
            assert error["ename"] == "Py4JError" and error["evalue"] == "boom"
        assert kernel.value("get_ipython().custom_exceptions") == "(Exception,)"
    finally:
        kernel.shutdown()


def test_an_interrupt_inside_a_restart_leaves_no_jvm_behind(default_spec: Path) -> None:
    """Ctrl-C while %spark restart stops the old session (injected: its stop() raises KeyboardInterrupt,
    as an interrupt landing in that py4j call does): the old JVM still goes."""
    kernel = KernelHarness(default_spec.name)
    try:
        assert kernel.value("spark.range(3).count()") == "3"
        old_jvms = kernel.java_children()
        kernel.run("from pyspark.sql import SparkSession\ndef interrupted_stop(self): raise KeyboardInterrupt\nSparkSession.stop = interrupted_stop")
        assert kernel.error("%spark restart")["ename"] == "KeyboardInterrupt"
        assert not wait_gone(old_jvms, 15), "the old session's JVM was orphaned by the interrupt"
    finally:
        kernel.shutdown()


def test_spark_stop_during_a_start_stuck_in_the_jvm_ends_it_at_once(prefix: Path) -> None:
    """A driver that waits for a debugger before it runs anything: the start never ends by itself.
    %spark stop used to wait 120 s for it and then leave that JVM running."""
    from conftest import free_port

    suspend = f"-agentlib:jdwp=transport=dt_socket,server=y,suspend=y,address=127.0.0.1:{free_port()}"
    folder = install(prefix, "--name", "stuck-start", "--no-cds", "--conf", f"spark.driver.extraJavaOptions={suspend}", "--replace")
    kernel = KernelHarness(folder.name)
    try:
        deadline = time.monotonic() + 60
        while not kernel.java_children() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)  # the driver JVM is up and suspended
        jvms = kernel.java_children()
        assert jvms and kernel.value("get_ipython().kernel.controller.session.state.value") == "'starting'"
        stopped = kernel.run("%spark stop", timeout=60)  # the old wait was 120 s
        assert "Spark stopped" in stopped["outputs"][0]["text"], stopped
        assert not wait_gone(jvms, 10), "the stuck start's JVM is still running"
        assert kernel.value("get_ipython().kernel.controller.session.state.value") == "'failed'"
    finally:
        kernel.shutdown()
