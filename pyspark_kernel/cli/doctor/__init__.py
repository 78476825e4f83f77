"""``pyspark-kernel check``: does this kernelspec's Spark, Java and Python fit together?

Each check reuses environment.py and reports OK, WARN, FAIL or SKIP with the fix for a FAIL. It runs the
kernel's own Python with the kernel's own environment, so it sees what the kernel will see. This module
holds the table (which rows, in which order); the rows are grouped by what they check: spark_java.py,
python.py, cluster.py, connect.py and shared_machine.py, on result.py's CheckResult.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import entry_points
from typing import Any

from pyspark_kernel import environment, masters, submitargs
from pyspark_kernel.cli import channels, kernelspec, options
from pyspark_kernel.cli.doctor.cluster import check_graphframes, check_k8s, check_yarn, install_notes
from pyspark_kernel.cli.doctor.connect import check_connect
from pyspark_kernel.cli.doctor.python import check_python, check_python_path, pyspark_result
from pyspark_kernel.cli.doctor.result import FAIL, OK, SKIP, WARN, CheckResult
from pyspark_kernel.cli.doctor.shared_machine import check_channels, check_isolation, check_temp_dirs
from pyspark_kernel.cli.doctor.spark_java import check_cds, check_java, check_spark_home

# What callers (cli/main.py, the tests) take from ``doctor``, wherever in the folder it is written.
__all__ = ["FAIL", "OK", "SKIP", "WARN", "CheckResult", "check", "check_channels", "format_table", "install_notes", "pyspark_result"]


def target(name: str | None, prefix: str | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(kernel Python, kernel environment, metadata) of kernelspec ``name``, or of what install would write."""
    if name:
        _, spec = kernelspec.find_spec(name, prefix)
        return str(spec["argv"][0]), {**os.environ, **spec.get("env", {})}, spec.get("metadata", {})
    spark = environment.resolve(need_java=False)
    env = kernelspec.kernel_env(spark, options.SparkOptions())
    return str(spark.python), {**os.environ, **env}, {}


def check_mode(python: str, env: dict[str, str], metadata: dict[str, Any]) -> list[CheckResult]:
    """The checks of this kernel's kind of master: Connect, YARN, Kubernetes, and GraphFrames if asked."""
    if env.get("SPARK_REMOTE"):
        return check_connect(python, env, str(metadata.get(kernelspec.METADATA_KEY, {}).get("spark_version", "")))
    submitted = submitargs.parse(env.get("PYSPARK_SUBMIT_ARGS", submitargs.CLOSING))
    results = [check_yarn(env)] if masters.is_yarn_master(submitted.master) else []
    results += check_k8s(submitted.master, submitted.conf) if masters.is_k8s_master(submitted.master) else []
    wanted = metadata.get(kernelspec.METADATA_KEY, {}).get("graphframes")
    return results + (check_graphframes(python, env, wanted) if wanted else [])


def check_provisioner(metadata: dict[str, Any]) -> CheckResult | None:
    """The launcher plugin kernel.json names, as the Jupyter server's Python (this one) finds it."""
    wanted = metadata.get("kernel_provisioner", {}).get("provisioner_name")
    if not wanted:
        return None
    names = {point.name for point in entry_points(group="jupyter_client.kernel_provisioners")}
    if wanted in names:
        config = metadata.get("kernel_provisioner", {}).get("config", {})
        pool = (
            f"; warm pool of {config['pool_size']} (idle timeout {config.get('pool_idle_timeout', 1800):g} s), each idle kernel holds a JVM"
            if config.get("pool_size")
            else ""
        )
        return CheckResult("provisioner", OK, f"{wanted} is available to this Python ({sys.executable}){pool}")
    return CheckResult(
        "provisioner", FAIL, f"{wanted} is not installed in {sys.executable}", "pip install pyspark-jupyter-kernel into the Jupyter server's Python"
    )


def check(name: str | None = None, prefix: str | None = None) -> list[CheckResult]:
    """All checks for kernelspec ``name`` (or the default environment), in the order a fix is needed."""
    python, env, metadata = target(name, prefix)
    home_result, spark_version = check_spark_home(env)
    results = [home_result, check_python_path(env), check_java(env, spark_version), *check_python(python, env, spark_version)]
    results += check_mode(python, env, metadata)
    results += check_cds(python, env)
    results.append(check_temp_dirs(python, env))
    results.append(check_isolation(env, spark_version))
    results.append(check_channels(python, env, metadata if name else channels.template_metadata()))
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
