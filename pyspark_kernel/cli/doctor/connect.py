"""The rows of a Spark Connect kernel: the client's modules in the kernel's Python, and a server
answering at SPARK_REMOTE (asked with the kernel's own probe, so both say it in the same words)."""

from __future__ import annotations

from pyspark_kernel import localserver, secrets
from pyspark_kernel.cli.doctor.result import FAIL, OK, CheckResult
from pyspark_kernel.errors import Problem
from pyspark_kernel.localserver import is_local_remote
from pyspark_kernel.pythons import python_imports
from pyspark_kernel.remote import check_reachable

# What pyspark's Spark Connect client imports besides pyspark (the ``connect`` extra and core deps).
CONNECT_CLIENT_MODULES = ("grpc", "grpc_status", "google.rpc", "zstandard", "pyarrow", "pandas")


def local_server_row(env: dict[str, str], spark_version: str) -> CheckResult:
    """The shared local server of this kernelspec (localserver.py): running, and how big, or started by the first kernel."""
    place = localserver.place_for(env.get("SPARK_HOME", ""), spark_version, env["SPARK_REMOTE"], env.get("PYSPARK_SUBMIT_ARGS", ""))
    status = localserver.status(place)
    if status.pid is None:
        return CheckResult("Connect server", OK, f"shared local server ({env['SPARK_REMOTE']}) not running: the first kernel starts it")
    return CheckResult("Connect server", OK, f"shared local server: {status.line()}")


def check_connect(python: str, env: dict[str, str], spark_version: str = "") -> list[CheckResult]:
    """The Connect client's modules in the kernel's Python, and a server answering at SPARK_REMOTE."""
    remote = env["SPARK_REMOTE"]
    missing = python_imports(python, env, CONNECT_CLIENT_MODULES)
    client = (
        CheckResult("Connect client", FAIL, f"{python}: {missing}", "pip install 'pyspark-jupyter-kernel[connect]' into the kernel's Python")
        if missing
        else CheckResult("Connect client", OK, "grpcio, grpcio-status, protos, zstandard, pyarrow, pandas importable")
    )
    if is_local_remote(remote):
        return [client, local_server_row(env, spark_version)]
    try:
        check_reachable(remote, timeout=3)
    except Problem as error:
        server = CheckResult.failed("Connect server", error)
    else:
        server = CheckResult("Connect server", OK, f"{secrets.redact_remote(remote)} accepts connections")
    return [client, server]
