"""JVM class-data sharing for the kernel's driver: the biggest start-up win there is.

A dynamic AppCDS archive, written by one training run that loads what notebooks load (DataFrame, SQL,
a Python UDF, toPandas), lets every later JVM of the same Java and Spark map those classes instead of
loading and verifying them: measured here, SparkSession + first count went from about 8 s to under 5.
The archive is valid only for the exact Java and classpath it was made with, so it lives in a cache
folder keyed by both and is rebuilt when they change; ``-Xshare:auto`` makes a JVM that finds it
missing or stale start normally without it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

from . import submitargs
from .environment import SparkEnvironment

TRAINING = """
from pyspark.sql import SparkSession, functions as F
spark = SparkSession.builder.master("local[2]").getOrCreate()
frame = spark.range(1000).withColumn("k", F.col("id") % 7)
frame.groupBy("k").count().collect()
spark.sql("SELECT 1 AS one").collect()
frame.select(F.udf(lambda value: value + 1, "long")("id")).collect()
frame.limit(5).toPandas()
spark.stop()
"""


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pyspark-kernel" / "cds"


def archive_key(spark: SparkEnvironment) -> str:
    """What the archive depends on: the Java (path and version), the Spark, and its jars."""
    java = spark.java
    jars = sorted((jar.name, jar.stat().st_size) for jar in (spark.spark_home / "jars").glob("*.jar"))
    parts = [str(java.executable.resolve()) if java else "", java.version_text if java else "", str(spark.spark_home.resolve()), spark.spark_version, repr(jars)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def archive_path(spark: SparkEnvironment) -> Path:
    return cache_folder() / f"spark-{spark.spark_version}-java-{spark.java.version if spark.java else 0}-{archive_key(spark)}.jsa"


def java_options(archive: Path) -> str:
    """The driver options that use ``archive``, or quietly do without it if it does not fit."""
    return f"-XX:SharedArchiveFile={archive} -Xshare:auto"


def build_archive(spark: SparkEnvironment, timeout: float = 600) -> Path | None:
    """The archive for this Java and Spark, made by one training run if the cache has none.

    Returns None (the kernel then starts without CDS) when the training run fails.
    """
    target = archive_path(spark)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    env = {
        **os.environ,
        "SPARK_HOME": str(spark.spark_home),
        "PYTHONPATH": os.pathsep.join(spark.python_path),
        "PYSPARK_PYTHON": str(spark.python),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_SUBMIT_ARGS": submitargs.build("local[2]", {}, {"spark.driver.extraJavaOptions": f"-XX:ArchiveClassesAtExit={partial}"}),
    }
    with tempfile.TemporaryDirectory(prefix="pyspark-cds-") as work:
        try:
            result = subprocess.run([str(spark.python), "-c", TRAINING], env=env, cwd=work, capture_output=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            return None
    if result.returncode != 0 or not wait_written(partial):
        partial.unlink(missing_ok=True)
        return None
    partial.chmod(0o644)
    partial.replace(target)
    return target


def wait_written(path: Path, seconds: float = 120) -> bool:
    """The JVM writes the archive as it exits, after the Python side has already returned."""
    deadline = time.monotonic() + seconds
    last_size = -1
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.exists() else -1
        if size > 0 and size == last_size:
            return True
        last_size = size
        time.sleep(1)
    return False


def archive_in_kernel(submit_args: str) -> Path | None:
    """The archive a kernelspec's PYSPARK_SUBMIT_ARGS points its driver at, if any."""
    archive = submitargs.java_option(submit_args, "-XX:SharedArchiveFile=")
    return Path(archive) if archive else None
