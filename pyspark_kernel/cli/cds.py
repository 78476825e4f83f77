"""JVM class-data sharing for the kernel's driver: the biggest start-up win there is.

A dynamic AppCDS archive, written by one training run that does what a kernel does (its session
conf, its per-cell JVM calls, the warm-up's queries: DataFrame, SQL, a Python UDF, toPandas), lets
every later JVM of the same Java and Spark map those classes instead of loading and verifying them:
measured here, SparkSession + first count went from about 8 s to under 5. The archive is valid only
for the exact Java and classpath it was made with, so it lives in a cache folder keyed by both (and
by the training) and is rebuilt when they change; ``-Xshare:auto`` makes a JVM that finds it missing
or stale start normally without it. spark-submit's launcher JVM, which runs before the driver's to
build its command line, gets a small archive of its own through SPARK_LAUNCHER_OPTS.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

from pyspark_kernel import masters, notebookconf, submitargs
from pyspark_kernel.environment import SparkEnvironment

# The warm-up's queries, run by the training as a kernel runs them. warmup.py is plain Python and is
# copied, not imported: the command line never imports the kernel's runtime.
WARMUP_MODULE = "pyspark_kernel.kernel.warmup"

# What the kernel's driver runs, so that its classes are in the archive: the session the kernel makes
# (the same builder call, from the PYSPARK_SUBMIT_ARGS a kernel launch gets: local[*], the notebook
# defaults), the JVM calls it makes per cell (job group, status tracker, log level, UI URL), the warm-up
# queries (warmup.QUERIES: count, SQL, pandas, a Python UDF), a DataFrame rendered as notebooks do
# (eager evaluation) and a small aggregation.
TRAINING = """
from pyspark.sql import SparkSession, functions as F
import kernel_warmup as warmup
spark = SparkSession.builder.getOrCreate()
context = spark.sparkContext
context.setLogLevel("WARN")
context.setJobGroup("pyspark-kernel-training", "training", interruptOnCancel=True)
context._jvm.java.lang.Thread.currentThread()
(context.applicationId, context.uiWebUrl, context._jsc.sc().statusTracker().getExecutorInfos())
for name, query in warmup.QUERIES:
    query(spark)
tracker = context.statusTracker()
for job_id in tracker.getJobIdsForGroup("pyspark-kernel-training"):
    job = tracker.getJobInfo(job_id)
    for stage_id in job.stageIds if job else ():
        tracker.getStageInfo(stage_id)
frame = spark.range(1000).withColumn("k", F.col("id") % 7)
frame.groupBy("k").count().collect()
frame._repr_html_(), frame.limit(5).toPandas()
context.cancelJobGroup("pyspark-kernel-training")
spark.stop()
"""


def warmup_source() -> str:
    """The path of warmup.py, found without importing it."""
    spec = find_spec(WARMUP_MODULE)
    assert spec is not None and spec.origin, f"{WARMUP_MODULE} is part of this package"
    return spec.origin


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pyspark-kernel" / "cds"


def training_submit_args(java_options: str = "") -> str:
    """PYSPARK_SUBMIT_ARGS of the training run: what a kernel launch of a default kernelspec gets."""
    kernelspec_args = submitargs.build(masters.DEFAULT_MASTER, {}, {"spark.driver.extraJavaOptions": java_options} if java_options else {})
    return submitargs.with_conf(kernelspec_args, notebookconf.launch_defaults(kernelspec_args))


def archive_key(spark: SparkEnvironment) -> str:
    """What the archive depends on: the Java (path and version), the Spark, its jars, and the training
    (a changed training or kernel conf makes a new archive)."""
    java = spark.java
    jars = sorted((jar.name, jar.stat().st_size) for jar in (spark.spark_home / "jars").glob("*.jar"))
    parts = [
        str(java.executable.resolve()) if java else "",
        java.version_text if java else "",
        str(spark.spark_home.resolve()),
        spark.spark_version,
        repr(jars),
        TRAINING,
        training_submit_args(),
    ]
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
    if not train(spark, partial, timeout):
        partial.unlink(missing_ok=True)
        return None
    partial.chmod(0o644)
    partial.replace(target)
    return target


def train(spark: SparkEnvironment, archive: Path, timeout: float = 600) -> bool:
    """One training run that writes a dynamic archive to ``archive`` as its driver JVM exits."""
    env = {
        **os.environ,
        "SPARK_HOME": str(spark.spark_home),
        "PYTHONPATH": os.pathsep.join(spark.python_path),
        "PYSPARK_PYTHON": str(spark.python),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_SUBMIT_ARGS": training_submit_args(f"-XX:ArchiveClassesAtExit={archive}"),
    }
    if spark.java is not None:  # the Java the archive is named after (install --env JAVA_HOME), not the installer's
        env["JAVA_HOME"] = str(spark.java.executable.parent.parent)
    with tempfile.TemporaryDirectory(prefix="pyspark-cds-") as work:
        # warmup.py is plain Python: a copy in the run's folder gives the kernel's own queries to any
        # Python, even one that has not this package (or has another version of it)
        shutil.copyfile(warmup_source(), Path(work) / "kernel_warmup.py")
        try:
            result = subprocess.run([str(spark.python), "-c", TRAINING], env=env, cwd=work, capture_output=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return result.returncode == 0 and wait_written(archive)


LAUNCHER_VARIABLE = "SPARK_LAUNCHER_OPTS"  # bin/spark-class: java -Xmx128m $SPARK_LAUNCHER_OPTS … launcher.Main


def launcher_archive_path(spark: SparkEnvironment) -> Path:
    driver = archive_path(spark)
    return driver.with_name(driver.stem + "-launcher.jsa")


def launcher_command(spark: SparkEnvironment, options: list[str]) -> list[str]:
    """What ``bin/spark-class`` runs before the driver, to have it print the driver's command."""
    java = str(spark.java.executable) if spark.java else "java"
    return [
        java,
        "-Xmx128m",
        *options,
        "-cp",
        f"{spark.spark_home}/jars/*",
        "org.apache.spark.launcher.Main",
        "org.apache.spark.deploy.SparkSubmit",
        "--master",
        masters.DEFAULT_MASTER,
        "pyspark-shell",
    ]


def launcher_archive(spark: SparkEnvironment, rebuild: bool = False, timeout: float = 120) -> Path | None:
    """The archive for spark-submit's launcher JVM (its classpath differs from the driver's, so it
    needs one of its own): one run of the launcher, about a second. None if that run fails."""
    target = launcher_archive_path(spark)
    if target.is_file() and not rebuild:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    env = {**os.environ, "SPARK_HOME": str(spark.spark_home), "SPARK_SCALA_VERSION": spark.scala_version or "2.13"}
    try:
        result = subprocess.run(launcher_command(spark, [f"-XX:ArchiveClassesAtExit={partial}"]), env=env, capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        return None
    partial.chmod(0o644)
    partial.replace(target)
    return target


def launcher_options(archive: Path) -> str:
    """SPARK_LAUNCHER_OPTS for the launcher JVM: its archive, and C1 only (it lives a fraction of a second).
    Measured (bench/start_probe.py launcher, CPU seconds of that JVM): 0.155 alone, 0.087 with the
    archive, 0.082 with both; the serial GC made it slower, so it is not here."""
    return f"-XX:SharedArchiveFile={archive} -Xshare:auto -XX:TieredStopAtLevel=1"


def launcher_env(spark: SparkEnvironment) -> dict[str, str]:
    """The kernel env that gives spark-submit's launcher JVM its archive (built here if missing), or {}."""
    archive = launcher_archive(spark)
    return {LAUNCHER_VARIABLE: launcher_options(archive)} if archive else {}


def archive_in_launcher(launcher_opts: str) -> Path | None:
    """The archive a kernelspec's SPARK_LAUNCHER_OPTS points the launcher JVM at, if any."""
    for option in shlex.split(launcher_opts):
        if option.startswith("-XX:SharedArchiveFile="):
            return Path(option.partition("=")[2])
    return None


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
