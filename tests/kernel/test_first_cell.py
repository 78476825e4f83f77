"""The first cell of a notebook shows its wait for the session, then its jobs, like any later cell.

Before, a fresh kernel's first cell (sent at once, while Spark starts) printed the session line and its
result and nothing in between, however long it waited and ran. Real kernels, real JVMs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import KernelHarness

pytestmark = pytest.mark.slow

# About 4 s of tasks on 2 cores, in one stage: long enough for the progress display (it shows after 0.5 s).
SLOW_JOB = "spark.range(40, numPartitions=40).selectExpr(\"java_method('java.lang.Thread', 'sleep', cast(200 as long)) as s\").collect()"


def first_cell_outputs(kernel_name: str) -> list[dict]:
    kernel = KernelHarness(kernel_name)
    try:
        return kernel.run(f"len({SLOW_JOB})")["outputs"]
    finally:
        kernel.shutdown()


def texts(outputs: list[dict], marker: str) -> list[str]:
    return [o["data"]["text/plain"] for o in outputs if o["type"] in ("display_data", "update_display_data") and marker in o["data"].get("text/html", "")]


def check_wait_then_jobs(outputs: list[dict]) -> None:
    waits = texts(outputs, "pyspark-kernel-wait")
    assert waits and waits[0].startswith("Waiting for the Spark session to start"), json.dumps(outputs)[:2000]
    assert waits[-1].startswith("Spark session started in"), waits
    progress = texts(outputs, "pyspark-kernel-progress")
    assert progress, f"no job view in the first cell: {json.dumps(outputs)[:2000]}"
    assert [o["data"]["text/plain"] for o in outputs if o["type"] == "execute_result"] == ["40"]
    kinds = [
        ("wait" if "pyspark-kernel-wait" in o.get("data", {}).get("text/html", "") else "progress")
        for o in outputs
        if o["type"] == "display_data" and o.get("metadata", {}).get("pyspark_kernel") == "progress"
    ]
    assert kinds.index("wait") < kinds.index("progress"), kinds


def test_the_first_cell_of_a_classic_kernel_shows_its_wait_then_its_jobs(default_spec: Path) -> None:
    check_wait_then_jobs(first_cell_outputs(default_spec.name))


def test_jobs_are_named_after_the_cell_and_line_that_started_them(spark_kernel: KernelHarness) -> None:
    result = spark_kernel.run("x = 1\nrows = spark.range(10).collect()")
    cell = result["reply"]["execution_count"]
    jobs = "sc._jvm.scala.jdk.javaapi.CollectionConverters.asJava(sc._jsc.sc().statusStore().jobsList(sc._jvm.java.util.ArrayList()))"
    names = spark_kernel.value(f"[j.name() for j in {jobs}]")
    assert f"collect at In[{cell}]:2" in names, names  # what the Spark UI shows for the job and its stage
    assert "ipykernel_" not in names, names


def test_a_first_cell_that_needs_the_context_but_not_spark_waits_for_it(default_spec: Path) -> None:
    """``F.udf("long")`` parses its type with the active SparkContext: a first cell sent while the session
    starts raised SESSION_OR_CONTEXT_NOT_EXISTS, and the same cell a moment later worked."""
    kernel = KernelHarness(default_spec.name)
    try:
        result = kernel.run("from pyspark.sql import functions as F\n@F.udf('long')\ndef twice(n):\n    return 2 * n\ntwice.returnType.simpleString()")
        errors = [o for o in result["outputs"] if o["type"] == "error"]
        assert not errors, errors[0]["evalue"] if errors else ""
        assert [o["data"]["text/plain"] for o in result["outputs"] if o["type"] == "execute_result"] == ["'bigint'"]
    finally:
        kernel.shutdown()
