"""Resolve the Spark environment a kernel runs in: SPARK_HOME, its pyspark and py4j, Java, Python.

This is the first step of the data path (CLI arguments -> environment -> kernel.json -> kernel ->
SparkSession). It is shared by ``install``, ``check``, the kernel's pre-start checks and the launcher
plugin, so a Spark that is wrong is reported with the same words wherever it is found. It reads the
filesystem and runs ``java -version`` and the kernel's Python; it writes nothing.

Each question has its own module: where Spark is and what its folder says (sparkhome.py), which Java
runs it and whether Spark supports that Java (javas.py), what the kernel's Python imports (pythons.py).
This one puts their answers together once, in a SparkEnvironment; it also hands on their names, so a
caller asks ``environment`` whatever part of the answer it needs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pyspark_kernel.errors import SparkEnvironmentError
from pyspark_kernel.javas import (
    JVM_FOLDERS,
    JavaRuntime,
    find_java,
    installed_javas,
    java_command,
    java_refusal,
    parse_java_version,
    require_java,
)
from pyspark_kernel.pythons import kernel_python
from pyspark_kernel.sparkhome import (
    SparkInstall,
    find_py4j_zip,
    find_pyspark_path,
    find_spark,
    find_spark_home,
    is_vendor_build,
    spark_release,
    spark_version_of,
)

__all__ = [
    "JVM_FOLDERS",
    "JavaRuntime",
    "SparkEnvironment",
    "SparkEnvironmentError",
    "SparkInstall",
    "find_java",
    "find_py4j_zip",
    "find_pyspark_path",
    "find_spark",
    "find_spark_home",
    "installed_javas",
    "is_vendor_build",
    "java_command",
    "java_refusal",
    "parse_java_version",
    "require_java",
    "resolve",
    "spark_release",
    "spark_version_of",
]


@dataclass(frozen=True)
class SparkEnvironment:
    """Everything a kernelspec needs to know about one Spark, resolved once."""

    spark_home: Path
    spark_version: str  # of the jars, e.g. 4.3.0
    scala_version: str  # e.g. 2.13
    py4j_zip: Path
    # The PYTHONPATH entry that holds this Spark's pyspark package, or None when the kernel's
    # Python already imports this very pyspark from site-packages (pip's embedded default).
    pyspark_path: Path | None
    python: Path
    python_version: str  # major.minor of ``python``
    java: JavaRuntime | None  # None: not resolved (Spark Connect needs no local Java)

    @property
    def python_path(self) -> list[str]:
        """PYTHONPATH entries, in order: this Spark's pyspark (if needed), then its py4j zip."""
        entries = [self.pyspark_path] if self.pyspark_path else []
        return [str(entry) for entry in entries + [self.py4j_zip]]


def resolve(
    spark_home: str | os.PathLike[str] | None = None,
    python: str | os.PathLike[str] | None = None,
    *,
    need_java: bool = True,
    environ: Mapping[str, str] | None = None,
) -> SparkEnvironment:
    """Resolve one Spark environment, or raise SparkEnvironmentError naming the problem and the fix.

    In order of cost: the Spark folder (the filesystem), then the kernel's Python (a process, unless it
    is this one), then Java (``java -version``), so the cheapest fault is the one reported."""
    spark = find_spark(spark_home, environ)
    kernel = kernel_python(python or sys.executable)
    pyspark_path = find_pyspark_path(spark.home, kernel.pyspark_home)
    java = None
    if need_java:
        java = find_java(environ)
        require_java(spark.version, java)
    return SparkEnvironment(
        spark_home=spark.home,
        spark_version=spark.version,
        scala_version=spark.scala_version,
        py4j_zip=spark.py4j_zip,
        pyspark_path=pyspark_path,
        python=kernel.executable,
        python_version=kernel.version,
        java=java,
    )
