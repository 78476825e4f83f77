"""The rows of a Spark Connect kernel: the client's modules in the kernel's Python, and a server
answering at SPARK_REMOTE (asked with the kernel's own probe, so both say it in the same words)."""

from __future__ import annotations

from pyspark_kernel import secrets
from pyspark_kernel.cli.doctor.result import FAIL, OK, CheckResult
from pyspark_kernel.errors import Problem
from pyspark_kernel.pythons import python_imports
from pyspark_kernel.remote import check_reachable

# What pyspark's Spark Connect client imports besides pyspark (the ``connect`` extra and core deps).
CONNECT_CLIENT_MODULES = ("grpc", "grpc_status", "google.rpc", "zstandard", "pyarrow", "pandas")


def check_connect(python: str, env: dict[str, str]) -> list[CheckResult]:
    """The Connect client's modules in the kernel's Python, and a server answering at SPARK_REMOTE."""
    remote = env["SPARK_REMOTE"]
    missing = python_imports(python, env, CONNECT_CLIENT_MODULES)
    client = (
        CheckResult("Connect client", FAIL, f"{python}: {missing}", "pip install 'pyspark-jupyter-kernel[connect]' into the kernel's Python")
        if missing
        else CheckResult("Connect client", OK, "grpcio, grpcio-status, protos, zstandard, pyarrow, pandas importable")
    )
    try:
        check_reachable(remote, timeout=3)
    except Problem as error:
        server = CheckResult.failed("Connect server", error)
    else:
        server = CheckResult("Connect server", OK, f"{secrets.redact_remote(remote)} accepts connections")
    return [client, server]
