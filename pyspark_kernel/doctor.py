"""``pyspark-kernel check``: does this kernelspec's Spark, Java and Python fit together?

Each check reuses environment.py and reports OK, WARN, FAIL or SKIP with the fix for a FAIL. It runs the
kernel's own Python with the kernel's own environment, so it sees what the kernel will see.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from . import environment, kernelspec
from .environment import SparkEnvironmentError

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: str
    detail: str
    fix: str = ""


def target(name: str | None, prefix: str | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(kernel Python, kernel environment, metadata) of kernelspec ``name``, or of what install would write."""
    if name:
        _, spec = kernelspec.find_spec(name, prefix)
        return spec["argv"][0], {**os.environ, **spec.get("env", {})}, spec.get("metadata", {})
    spark = environment.resolve(need_java=False)
    env = kernelspec.kernel_env(spark, kernelspec.SparkOptions())
    return str(spark.python), {**os.environ, **env}, {}


def check_spark_home(env: dict[str, str]) -> tuple[CheckResult, str | None]:
    try:
        home = environment.find_spark_home(None, env)
        version, scala = environment.spark_version_of(home)
        environment.find_py4j_zip(home)
    except SparkEnvironmentError as error:
        problem, _, fix = str(error).partition("\n")
        return CheckResult("SPARK_HOME", FAIL, problem, fix), None
    return CheckResult("SPARK_HOME", OK, f"Spark {version} (Scala {scala}) at {home}"), version


def check_python_path(env: dict[str, str]) -> CheckResult:
    entries = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    missing = [entry for entry in entries if not Path(entry).exists()]
    if missing:
        return CheckResult("PYTHONPATH", FAIL, f"missing: {', '.join(missing)}", "reinstall the kernelspec (pyspark-kernel install … --replace) or use --provisioner")
    if not any(Path(entry).name.startswith("py4j-") for entry in entries):
        return CheckResult("PYTHONPATH", WARN, "no py4j zip on PYTHONPATH; the kernel relies on its Python's py4j")
    return CheckResult("PYTHONPATH", OK, os.pathsep.join(entries))


def check_java(env: dict[str, str], spark_version: str | None) -> CheckResult:
    if env.get("SPARK_REMOTE"):
        return CheckResult("Java", SKIP, "Spark Connect kernel: no local JVM")
    try:
        java = environment.find_java(env)
    except SparkEnvironmentError as error:
        problem, _, fix = str(error).partition("\n")
        return CheckResult("Java", FAIL, problem, fix)
    problem = environment.java_problem(spark_version, java) if spark_version else None
    if problem:
        text, _, fix = problem.partition("\n")
        return CheckResult("Java", FAIL, text, fix)
    return CheckResult("Java", OK, f"Java {java.version_text} at {java.executable}")


def check_pyspark(python: str, env: dict[str, str], spark_version: str | None) -> CheckResult:
    probe = "import sys, pyspark; print(pyspark.__version__); print(pyspark.__file__); print('%d.%d' % sys.version_info[:2])"
    try:
        result = subprocess.run([python, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    except OSError as error:
        return CheckResult("pyspark", FAIL, f"cannot run the kernel's Python {python}: {error}", "reinstall the kernelspec with a working --python")
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return CheckResult("pyspark", FAIL, f"not importable by {python}: {last}", "pip install pyspark, or fix PYTHONPATH in the kernelspec")
    version, location, _ = result.stdout.split()[:3]
    if spark_version and version != spark_version:
        return CheckResult(
            "pyspark", FAIL, f"imports pyspark {version} from {location}, but SPARK_HOME's jars are Spark {spark_version}",
            "reinstall the kernelspec with pyspark-kernel install --spark-home SPARK_HOME --replace",
        )
    return CheckResult("pyspark", OK, f"pyspark {version} from {location}")


def python_minor(python: str, env: dict[str, str]) -> str | None:
    try:
        result = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], env=env, capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    return result.stdout.strip() or None


def check_python_versions(python: str, env: dict[str, str]) -> CheckResult:
    worker = env.get("PYSPARK_PYTHON", python)
    driver_version, worker_version = python_minor(python, env), python_minor(worker, env)
    if driver_version is None or worker_version is None:
        broken = python if driver_version is None else worker
        return CheckResult("Python", FAIL, f"{broken} does not run", "set PYSPARK_PYTHON to a working Python of the driver's version")
    if driver_version != worker_version:
        return CheckResult("Python", FAIL, f"driver Python {driver_version} but PYSPARK_PYTHON {worker} is {worker_version}", "use the same Python minor version for both (Spark refuses a mismatch)")
    return CheckResult("Python", OK, f"driver and workers on Python {driver_version}")


def check_provisioner(metadata: dict[str, Any]) -> CheckResult | None:
    wanted = metadata.get("kernel_provisioner", {}).get("provisioner_name")
    if not wanted:
        return None
    names = {point.name for point in entry_points(group="jupyter_client.kernel_provisioners")}
    if wanted in names:
        return CheckResult("provisioner", OK, f"{wanted} is available to this Python ({sys.executable})")
    return CheckResult("provisioner", FAIL, f"{wanted} is not installed in {sys.executable}", "pip install pyspark-jupyter-kernel into the Jupyter server's Python")


def check(name: str | None = None, prefix: str | None = None) -> list[CheckResult]:
    """All checks for kernelspec ``name`` (or the default environment), in the order a fix is needed."""
    python, env, metadata = target(name, prefix)
    home_result, spark_version = check_spark_home(env)
    results = [home_result, check_python_path(env), check_java(env, spark_version), check_pyspark(python, env, spark_version), check_python_versions(python, env)]
    provisioner = check_provisioner(metadata)
    return results + ([provisioner] if provisioner else [])


def format_table(results: list[CheckResult]) -> str:
    width = max(len(result.check) for result in results)
    lines = []
    for result in results:
        lines.append(f"{result.status:<4}  {result.check:<{width}}  {result.detail}")
        if result.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {result.fix}")
    return "\n".join(lines)
