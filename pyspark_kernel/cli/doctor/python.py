"""The rows about the kernel's Python: the PYTHONPATH kernel.json gives it, the pyspark it imports
against SPARK_HOME's jars, and the workers' Python (PYSPARK_PYTHON), which must be the same minor
version as the driver's."""

from __future__ import annotations

import os
from pathlib import Path

from pyspark_kernel import sparkhome
from pyspark_kernel.cli.doctor.result import FAIL, OK, WARN, CheckResult
from pyspark_kernel.errors import SparkEnvironmentError
from pyspark_kernel.pythons import PythonFacts, probe_python


def check_python_path(env: dict[str, str]) -> CheckResult:
    entries = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    missing = [entry for entry in entries if not Path(entry).exists()]
    if missing:
        return CheckResult(
            "PYTHONPATH", FAIL, f"missing: {', '.join(missing)}", "reinstall the kernelspec (pyspark-kernel install … --replace) or use --provisioner"
        )
    if not any(Path(entry).name.startswith("py4j-") for entry in entries):
        return CheckResult("PYTHONPATH", WARN, "no py4j zip on PYTHONPATH; the kernel relies on its Python's py4j")
    return CheckResult("PYTHONPATH", OK, os.pathsep.join(entries))


def check_python(python: str, env: dict[str, str], spark_version: str | None) -> list[CheckResult]:
    """pyspark as the kernel's Python imports it, and the workers' Python (PYSPARK_PYTHON) of the same
    minor version: each Python is asked once."""
    try:
        kernel = probe_python(python, env)
    except SparkEnvironmentError as error:
        return [CheckResult.failed("pyspark", error)]
    worker_python = env.get("PYSPARK_PYTHON", python)
    try:
        worker = kernel if worker_python == python else probe_python(worker_python, env)
    except SparkEnvironmentError as error:
        worker_result = CheckResult(
            "Python", FAIL, f"PYSPARK_PYTHON {worker_python} does not run: {error.problem}", "set PYSPARK_PYTHON to a working Python of the driver's version"
        )
    else:
        worker_result = python_versions_result(kernel, worker)
    return [pyspark_result(kernel, spark_version), worker_result]


def pyspark_result(kernel: PythonFacts, spark_version: str | None) -> CheckResult:
    version, location = kernel.pyspark_version, kernel.pyspark_home
    if version is None:
        return CheckResult(
            "pyspark", FAIL, f"not importable by {kernel.executable}: {kernel.pyspark_error}", "pip install pyspark, or fix PYTHONPATH in the kernelspec"
        )
    if spark_version and sparkhome.spark_release(version) != sparkhome.spark_release(spark_version):
        return CheckResult(
            "pyspark",
            FAIL,
            f"imports pyspark {version} from {location}, but SPARK_HOME's jars are Spark {spark_version}",
            "reinstall the kernelspec with pyspark-kernel install --spark-home SPARK_HOME --replace",
        )
    if spark_version and sparkhome.is_vendor_build(spark_version):
        return CheckResult(
            "pyspark",
            WARN,
            f"pyspark {version} from {location}, with a vendor build of its release in SPARK_HOME's jars ({spark_version})",
            "nothing, usually; if Spark calls fail, use that vendor's pyspark",
        )
    return CheckResult("pyspark", OK, f"pyspark {version} from {location}")


def python_versions_result(driver: PythonFacts, worker: PythonFacts) -> CheckResult:
    if driver.version != worker.version:
        return CheckResult(
            "Python",
            FAIL,
            f"driver Python {driver.version} but PYSPARK_PYTHON {worker.executable} is {worker.version}",
            "use the same Python minor version for both (Spark refuses a mismatch)",
        )
    return CheckResult("Python", OK, f"driver and workers on Python {driver.version}")
