"""User code and the kernel share one SparkSession, reached every way pyspark offers, at any moment.

Each test starts its own kernel and sends its first cell the moment kernel_info answers, as nbclient,
nbconvert and papermill do: that is when user code races the kernel's background start.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ACTIVE_JOBS_BUT_WARM_UP, KernelHarness, install, wait_gone

pytestmark = pytest.mark.slow

FIRST_CELL = (
    "from pyspark import SparkContext\n"
    "from pyspark.sql import SparkSession\n"
    'spark = SparkSession.builder.master("local").appName("Tutorial").config("spark.sql.shuffle.partitions", "4").getOrCreate()'
)
JVM_CHATTER = ("log4j", "Setting default log level", "incubator", "WARN ", "NativeCodeLoader")


@pytest.fixture(scope="module")
def lazy_spec(prefix: Path) -> Path:
    return install(prefix, "--name", "shared-lazy", "--start", "lazy", "--replace")


@pytest.fixture(scope="module")
def none_spec(prefix: Path) -> Path:
    return install(prefix, "--name", "shared-none", "--start", "none", "--replace")


@pytest.fixture
def fresh(default_spec: Path) -> Iterator[KernelHarness]:
    harness = KernelHarness(default_spec.name)
    yield harness
    harness.shutdown()


def kernel_outputs(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The outputs the kernel added to a cell (banner, progress, notices), by their metadata."""
    return [output for output in result["outputs"] if output.get("metadata", {}).get("pyspark_kernel") == kind]


def stderr_of(result: dict[str, Any]) -> str:
    return "".join(output["text"] for output in result["outputs"] if output["type"] == "stream" and output["name"] == "stderr")


def assert_clean(result: dict[str, Any]) -> None:
    """No error, nothing from the JVM, no second SparkContext anywhere in a cell's output."""
    errors = [output for output in result["outputs"] if output["type"] == "error"]
    assert not errors, "\n".join(errors[0]["traceback"])
    text = str(result["outputs"])
    assert "multiple SparkContexts" not in text
    assert not any(chatter in stderr_of(result) for chatter in JVM_CHATTER), stderr_of(result)


def test_a_first_cell_builder_sent_at_once_joins_the_kernels_session(fresh: KernelHarness) -> None:
    first = fresh.run(FIRST_CELL)  # sent the moment kernel_info answered: the start is in flight
    assert_clean(first)
    assert fresh.value("spark.sparkContext.applicationId == sc.applicationId") == "True"
    assert fresh.value("spark is get_ipython().kernel.controller.session.get()") == "True"
    assert fresh.value("(SparkSession.getActiveSession() is spark, SparkSession.active() is spark, SparkContext.getOrCreate() is sc)") == "(True, True, True)"
    other_thread = (
        "import threading\n"
        "seen = []\n"
        "worker = threading.Thread(target=lambda: seen.append((SparkSession.getActiveSession(), SparkSession.builder.getOrCreate())))\n"
        "worker.start(); worker.join(60)\n"
        "[found is spark for found in seen[0]]"
    )
    assert fresh.value(other_thread) == "[True, True]"


def test_builder_settings_on_the_running_session_apply_or_show_a_notice(fresh: KernelHarness) -> None:
    first = fresh.run(FIRST_CELL)
    assert_clean(first)
    notices = kernel_outputs(first, "notice")
    assert len(notices) == 1, first["outputs"]
    text = notices[0]["data"]["text/plain"]
    assert "spark.master=local (running: local[*])" in text and "spark.app.name=Tutorial" in text
    assert "spark.sql.shuffle.partitions" not in text  # a runtime SQL setting: applied, not warned about
    assert fresh.value('spark.conf.get("spark.sql.shuffle.partitions")') == "'4'"
    quiet = fresh.run('SparkSession.builder.config("spark.sql.shuffle.partitions", "6").getOrCreate() is spark')
    assert not kernel_outputs(quiet, "notice") and fresh.value('spark.conf.get("spark.sql.shuffle.partitions")') == "'6'"


def test_a_direct_sparkcontext_gets_pysparks_error_and_the_session_works_on(fresh: KernelHarness) -> None:
    error = fresh.error('from pyspark import SparkConf, SparkContext\nSparkContext(conf=SparkConf().setAppName("mine"))')
    assert error["ename"] == "ValueError" and "Cannot run multiple SparkContexts at once" in error["evalue"]
    assert fresh.value("sc.parallelize(range(100)).sum()") == "4950"


def test_stop_then_a_new_builder_gives_a_session_the_kernel_adopts(default_spec: Path) -> None:
    fresh = KernelHarness(default_spec.name)  # shut down inside the test: its JVM must go with it
    try:
        _stop_then_rebuild(fresh)
    finally:
        jvms = fresh.java_children()
        fresh.shutdown()
    assert not wait_gone(jvms, 15), "the JVM outlived the kernel"


def _stop_then_rebuild(fresh: KernelHarness) -> None:
    fresh.run(FIRST_CELL)
    assert fresh.run("spark.stop()")["reply"]["status"] == "ok"
    assert fresh.value("get_ipython().kernel.controller.session.state.value") == "'stopped'"
    rebuilt = fresh.run(
        'spark = SparkSession.builder.master("local[1]").appName("second").config("spark.sql.shuffle.partitions", "3").getOrCreate()\nsc = spark.sparkContext'
    )
    assert_clean(rebuilt)
    assert not kernel_outputs(rebuilt, "notice")  # nothing was running: the builder's settings all apply
    banner = kernel_outputs(rebuilt, "banner")
    assert len(banner) == 1 and "master local[1]" in banner[0]["data"]["text/plain"], rebuilt["outputs"]
    assert fresh.value("(sc.master, sc.appName, spark.conf.get('spark.sql.shuffle.partitions'))") == "('local[1]', 'second', '3')"
    status = fresh.run("%spark")["outputs"][0]["text"]
    assert "state: ready" in status and "app name: second" in status and "master: local[1]" in status
    job = fresh.run(
        "from pyspark.sql import functions as F\n"
        "spark.range(0, 20_000_000, numPartitions=8).groupBy((F.col('id') % 3).alias('k')).count().orderBy('k').collect()[0][1]"
    )
    assert kernel_outputs(job, "progress"), "no progress display for the adopted session's job"
    reply = fresh.interrupt(EARLY_INTERRUPT_JOB, 1.0)
    assert reply["ename"] == "KeyboardInterrupt"
    time.sleep(3)
    assert fresh.value(ACTIVE_JOBS_BUT_WARM_UP) == "[]"


@pytest.mark.parametrize("mode", ["lazy", "none"])
def test_with_lazy_or_no_start_the_users_builder_makes_the_session(mode: str, lazy_spec: Path, none_spec: Path) -> None:
    kernel = KernelHarness((lazy_spec if mode == "lazy" else none_spec).name)
    try:
        first = kernel.run('from pyspark.sql import SparkSession\nspark = SparkSession.builder.master("local[1]").appName("mine").getOrCreate()')
        assert_clean(first)
        assert not kernel_outputs(first, "notice")
        assert kernel.value("(spark.sparkContext.master, spark.sparkContext.appName)") == "('local[1]', 'mine')"
        assert kernel.value("spark is get_ipython().kernel.controller.session.get()") == "True"
        if mode == "lazy":  # the stand-in turns into the session the user made
            assert kernel.value("sc is spark.sparkContext") == "True"
        assert "app name: mine" in kernel.run("%spark")["outputs"][0]["text"]
        jvm_log = kernel.run("%spark log 200")["outputs"][0]["text"]
        assert "SparkContext: Running Spark version" in jvm_log or "log4j" in jvm_log, jvm_log  # the user's JVM wrote to the kernel's log
        jvms = kernel.java_children()
        assert len(jvms) == 1
    finally:
        kernel.shutdown()
    assert not wait_gone(jvms, 15), "the JVM the user's builder launched outlived the kernel"


# -- early interrupts ------------------------------------------------------------------------------
# Runs about 80 s on 2 cores when left alone. Adaptive execution submits its first stage as a map-stage
# job, which Spark's "cancel with future jobs" does not reject: the case an early interrupt used to miss.
EARLY_INTERRUPT_JOB = "spark.range(0, 10**11, numPartitions=400).selectExpr('sum(id % 7)').collect()"


@pytest.fixture(scope="module")
def interrupted_kernel(default_spec: Path) -> Iterator[KernelHarness]:
    harness = KernelHarness(default_spec.name)
    harness.value("spark.range(1).count()")
    yield harness
    harness.shutdown()


@pytest.mark.parametrize("delay", [0.1, 0.3, 1.0, 3.0])
def test_an_early_interrupt_cancels_the_cells_job(interrupted_kernel: KernelHarness, delay: float) -> None:
    reply = interrupted_kernel.interrupt(EARLY_INTERRUPT_JOB, delay)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
    time.sleep(3)  # the job would run on for about a minute: 3 s after the reply it must be gone
    assert interrupted_kernel.value(ACTIVE_JOBS_BUT_WARM_UP) == "[]", "the interrupted cell's job kept running"
    assert interrupted_kernel.value("spark.range(5).count()") == "5"


@pytest.mark.parametrize("delay", [0.3, 3.0], ids=["early", "mid-job"])
def test_an_interrupt_leaves_other_threads_jobs_running(interrupted_kernel: KernelHarness, delay: float) -> None:
    interrupted_kernel.value(
        "import threading\n"
        "background = {}\n"
        "def work():\n"
        "    try: background['count'] = spark.range(0, 300_000_000, numPartitions=4).selectExpr('sum(sqrt(id))').count()\n"
        "    except BaseException as error: background['error'] = repr(error)[:1500]\n"
        "worker = threading.Thread(target=work); worker.start(); worker.is_alive()"
    )
    reply = interrupted_kernel.interrupt(EARLY_INTERRUPT_JOB, delay)
    assert reply["ename"] == "KeyboardInterrupt"
    # What the other thread got, and how long it waited: a cancel says "cancelled", a slow job {}.
    outcome = interrupted_kernel.value(
        "_joined = __import__('time').monotonic(); worker.join(180); background, round(__import__('time').monotonic() - _joined)"
    )
    assert outcome.startswith("({'count': 1},"), f"the other thread's job did not finish: {outcome}"
