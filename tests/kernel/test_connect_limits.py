"""Connect's limits said plainly: in a Spark Connect kernel, a cell that uses RDDs, ``sc`` or SparkContext
shows one message naming the classic kernelspec, where pyspark raises a NameError, an attribute error or
a not-implemented error; only the message changes (compared with plain ipykernel on the same server),
``%tb`` still prints pyspark's own error, and no cell can start a local JVM.

The server is conftest's ``connect_server``; plain ipykernel is ipykernel's own kernelspec with
SPARK_REMOTE in its env, as the corpus's reference is recorded (tests/notebooks/record.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import KernelHarness, cli, install
from notebooks.record import PLAIN_KERNEL, install_plain_kernel

from pyspark_kernel.kernel import connectlimits

CLASSIC_DISPLAY = "PySpark classic (limits test)"
CLASSIC_NAME = "limits-classic"
CLASSIC_IN_MESSAGE = f'"{CLASSIC_DISPLAY}" ({CLASSIC_NAME})'

# cell -> what the message says was used; each fails in plain ipykernel on Spark Connect too
CELLS = {
    "sc.parallelize([1, 2, 3]).sum()": "`sc`",
    "spark.sparkContext": "`spark.sparkContext`",
    "spark.range(3).rdd": "`DataFrame.rdd`",
    "spark.sparkContext.parallelize([1, 2]).count()": "`spark.sparkContext`",
    "from pyspark import SparkContext\nSparkContext.getOrCreate()": "a SparkContext",
    "from pyspark import SparkConf, SparkContext\nSparkContext(conf=SparkConf().setMaster('local[1]'))": "a SparkContext",
    "sc.setLogLevel('WARN')": "`sc`",
    "sc.broadcast({'a': 1})": "`sc`",
    "spark.createDataFrame(spark.sparkContext.parallelize([(1, 'a')]))": "`spark.sparkContext`",
    "spark.range(3).rdd.map(lambda row: row.id).collect()": "`DataFrame.rdd`",
}
# errors that are not about Connect's limits: shown as pyspark and Python show them, in both kernels
OTHER_ERRORS = {
    "undefined_name + 1": "NameError",
    "spark.sql('SELECT * FROM no_such_table').collect()": "AnalysisException",
    "raise RuntimeError('my own error')": "RuntimeError",
    "spark.no_such_attribute": "AttributeError",
}


# -- the recognition, on pyspark's own error classes (no server) -----------------------------------------
def pyspark_errors() -> dict[str, BaseException]:
    from pyspark.errors import PySparkAttributeError, PySparkNotImplementedError, PySparkRuntimeError

    return {
        "`spark.sparkContext`": PySparkAttributeError(errorClass="JVM_ATTRIBUTE_NOT_SUPPORTED", messageParameters={"attr_name": "sparkContext"}),
        "`_jsc` (a JVM object)": PySparkAttributeError(errorClass="JVM_ATTRIBUTE_NOT_SUPPORTED", messageParameters={"attr_name": "_jsc"}),
        "`DataFrame.rdd` (an RDD)": PySparkNotImplementedError(errorClass="NOT_IMPLEMENTED", messageParameters={"feature": "rdd"}),
        "a SparkContext": PySparkRuntimeError(errorClass="CONTEXT_UNAVAILABLE_FOR_REMOTE_CLIENT", messageParameters={}),
        "`sc` (a SparkContext)": NameError("name 'sc' is not defined", name="sc"),
    }


def test_each_error_of_connects_missing_sparkcontext_is_named() -> None:
    for used, error in pyspark_errors().items():
        limit = connectlimits.explain(error, "sc://127.0.0.1:15002/;token=secret-token")
        assert limit is not None and str(limit).startswith(f"{used} is not available"), (used, limit)
        assert limit.__cause__ is error and "secret-token" not in str(limit)
        assert "Fix: " in str(limit) and "%tb" in limit.fix


def test_other_errors_are_left_alone() -> None:
    from pyspark.errors import PySparkAttributeError, PySparkNotImplementedError

    others = [
        NameError("name 'spark_df' is not defined", name="spark_df"),
        AttributeError("'DataFrame' object has no attribute 'foo'"),
        RuntimeError("my own error"),
        PySparkNotImplementedError(errorClass="NOT_IMPLEMENTED", messageParameters={"feature": "enableHiveSupport"}),
        PySparkAttributeError(errorClass="ATTRIBUTE_NOT_SUPPORTED", messageParameters={"attr_name": "foo"}),
    ]
    assert [connectlimits.explain(error, "sc://127.0.0.1:15002") for error in others] == [None] * len(others)


def test_the_fix_names_the_installed_classic_kernelspecs_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path, "--name", "a-classic", "--display-name", "Classic Spark")
    install(tmp_path, "--name", "a-connect", "--display-name", "Connect Spark", "--remote", "sc://127.0.0.1:15002")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))
    assert connectlimits.classic_kernelspecs() == ['"Classic Spark" (a-classic)']
    assert "`pyspark-kernel install` (without --remote)" in connectlimits.fix_text([])


# -- live: a Connect kernel, plain ipykernel on the same server --------------------------------------------
@pytest.fixture(scope="module")
def limits_kernel(prefix: Path, connect_server: str) -> Iterator[KernelHarness]:
    """A Connect kernel, beside a classic kernelspec its message can name."""
    install(prefix, "--name", CLASSIC_NAME, "--display-name", CLASSIC_DISPLAY, "--replace")
    folder = install(prefix, "--name", "limits-connect", "--remote", connect_server, "--replace")
    kernel = KernelHarness(folder.name)
    yield kernel
    kernel.shutdown()


@pytest.fixture(scope="module")
def plain_connect_kernel(prefix: Path, connect_server: str) -> Iterator[KernelHarness]:
    """Plain ipykernel with pyspark's Connect client: ``spark`` built by the user's first cell."""
    folder = install_plain_kernel(prefix)
    spec = json.loads((folder / "kernel.json").read_text())
    spec["env"]["SPARK_REMOTE"] = connect_server
    (folder / "kernel.json").write_text(json.dumps(spec))
    kernel = KernelHarness(PLAIN_KERNEL)
    kernel.value("from pyspark.sql import SparkSession\nspark = SparkSession.builder.getOrCreate()\ntype(spark).__module__")
    yield kernel
    kernel.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("cell", list(CELLS))
def test_a_cell_using_what_connect_lacks_shows_one_message(cell: str, limits_kernel: KernelHarness) -> None:
    result = limits_kernel.run(cell)
    errors = [output for output in result["outputs"] if output["type"] == "error"]
    assert len(errors) == 1, result
    error = errors[0]
    assert error["ename"] == "NotInSparkConnect", error["traceback"]
    assert len(error["traceback"]) == 1, "one message, not a traceback"
    text = error["traceback"][0]
    assert text.count("\n") == 1, text  # the problem, then the fix
    assert CELLS[cell] in error["evalue"] and "Spark Connect" in error["evalue"]
    assert CLASSIC_IN_MESSAGE in error["evalue"], error["evalue"]
    assert result["reply"]["status"] == "error" and result["reply"]["ename"] == "NotInSparkConnect"


@pytest.mark.slow
def test_tb_still_shows_pysparks_own_error(limits_kernel: KernelHarness) -> None:
    limits_kernel.error("spark.sparkContext")
    assert limits_kernel.value("import sys\ntype(sys.last_value).__name__") == "'PySparkAttributeError'"
    shown = limits_kernel.run("%tb")["outputs"]
    tracebacks = ["\n".join(output["traceback"]) for output in shown if output["type"] == "error"]
    assert tracebacks and "JVM_ATTRIBUTE_NOT_SUPPORTED" in tracebacks[0] and "sparkContext" in tracebacks[0], shown


@pytest.mark.slow
def test_only_the_message_changes_compared_with_plain_ipykernel(limits_kernel: KernelHarness, plain_connect_kernel: KernelHarness) -> None:
    """Each of these cells fails in plain ipykernel too, other errors keep their names, and work runs in both."""
    for cell in CELLS:
        assert plain_connect_kernel.error(cell)["ename"] != "NotInSparkConnect"
    for cell, ename in OTHER_ERRORS.items():
        assert plain_connect_kernel.error(cell)["ename"] == ename, cell
        assert limits_kernel.error(cell)["ename"] == ename, cell
    work = "spark.range(5).selectExpr('sum(id) AS s').first().s"
    assert limits_kernel.value(work) == plain_connect_kernel.value(work) == "10"
    assert limits_kernel.java_children() == []


@pytest.mark.slow
@pytest.mark.parametrize("start", ["lazy", "none"])
def test_sparkcontext_in_a_connect_kernel_starts_no_local_jvm(start: str, prefix: Path, connect_server: str) -> None:
    """Before any Connect session exists, pyspark would launch a local JVM for SparkContext (and leave it
    running when the master is missing): in a Connect kernel that would be a second Spark, quietly."""
    folder = install(prefix, "--name", f"limits-{start}", "--remote", connect_server, "--start", start, "--replace")
    kernel = KernelHarness(folder.name)
    try:
        error = kernel.error("from pyspark import SparkConf, SparkContext\nSparkContext.getOrCreate(SparkConf().setMaster('local[1]'))")
        assert error["ename"] == "NotInSparkConnect", error["traceback"]
        assert kernel.java_children() == []
    finally:
        kernel.shutdown()


@pytest.fixture(scope="module")
def local_limits_kernel(prefix: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelHarness]:
    """A kernel of ``install --remote 'local[*]'``, with a TMPDIR of its own: its shared server is this module's."""
    tmpdir = tmp_path_factory.mktemp("limits-local-server")
    install(prefix, "--name", CLASSIC_NAME, "--display-name", CLASSIC_DISPLAY, "--replace")
    folder = install(prefix, "--name", "limits-local", "--remote", "local[*]", "--env", "TMPDIR", str(tmpdir), "--replace")
    kernel = KernelHarness(folder.name)
    kernel.value("spark.range(1).count()")  # the server is up and registered, so the stop below finds it
    yield kernel
    kernel.shutdown()
    stopped = cli("server", "stop", env={**os.environ, "TMPDIR": str(tmpdir)})
    assert stopped.returncode == 0, stopped.stderr


@pytest.mark.slow
def test_the_shared_local_server_kernel_says_the_same(local_limits_kernel: KernelHarness) -> None:
    for cell in ("sc.parallelize([1, 2, 3]).sum()", "spark.range(3).rdd", "from pyspark import SparkContext\nSparkContext.getOrCreate()"):
        error = local_limits_kernel.error(cell)
        assert error["ename"] == "NotInSparkConnect" and len(error["traceback"]) == 1, error["traceback"]
        assert CELLS[cell] in error["evalue"], error["evalue"]
        assert "a shared local server, local[*]" in error["evalue"] and CLASSIC_IN_MESSAGE in error["evalue"], error["evalue"]
    assert local_limits_kernel.value("from pyspark import SparkContext\nSparkContext._gateway is None") == "True", "no py4j JVM in the kernel"
    assert local_limits_kernel.value("spark.range(4).count()") == "4"
