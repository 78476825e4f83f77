"""The rows about Spark and the Java it runs on: SPARK_HOME, Java, and the class-data archive (CDS)
that only fits the one Java and Spark it was made with."""

from __future__ import annotations

from pyspark_kernel import environment, javas, sparkhome
from pyspark_kernel.cli import cds
from pyspark_kernel.cli.doctor.result import OK, SKIP, WARN, CheckResult
from pyspark_kernel.errors import SparkEnvironmentError


def check_spark_home(env: dict[str, str]) -> tuple[CheckResult, str | None]:
    """The SPARK_HOME row and the Spark version of its jars (None when it does not resolve), which
    the Java, pyspark and isolation rows are judged against."""
    try:
        spark = sparkhome.find_spark(None, env)
    except SparkEnvironmentError as error:
        return CheckResult.failed("SPARK_HOME", error), None
    return CheckResult("SPARK_HOME", OK, f"Spark {spark.version} (Scala {spark.scala_version}) at {spark.home}"), spark.version


def check_java(env: dict[str, str], spark_version: str | None) -> CheckResult:
    if env.get("SPARK_REMOTE"):
        return CheckResult("Java", SKIP, "Spark Connect kernel: no local JVM")
    try:
        java = javas.find_java(env)
        if spark_version:
            javas.require_java(spark_version, java)
    except SparkEnvironmentError as error:
        return CheckResult.failed("Java", error)
    return CheckResult("Java", OK, f"Java {java.version_text} at {java.executable}")


REBUILD = "pyspark-kernel install … --replace rebuilds it"


def check_cds(python: str, env: dict[str, str]) -> list[CheckResult]:
    """Whether the driver starts from a class-data archive that still fits this Java and Spark."""
    if env.get("SPARK_REMOTE"):
        return []
    archive = cds.archive_in_kernel(env.get("PYSPARK_SUBMIT_ARGS", ""))
    if archive is None:
        return [CheckResult("CDS", SKIP, "no class-data archive (installed with --no-cds, or it could not be built)")]
    if not archive.is_file():
        return [CheckResult("CDS", WARN, f"archive {archive} is missing: the JVM starts without it", REBUILD)]
    try:
        current = cds.archive_path(environment.resolve(env.get("SPARK_HOME"), python, environ=env))
    except SparkEnvironmentError:
        return [CheckResult("CDS", SKIP, "cannot tell: the Spark environment does not resolve (see above)")]
    if current.name != archive.name:  # the name carries the key (Java, Spark, jars, training); the folder is whoever's cache
        return [
            CheckResult(
                "CDS",
                WARN,
                f"archive {archive.name} was made for another Java or Spark (or an older training): the JVM ignores it or maps less of it",
                REBUILD,
            )
        ]
    launcher = cds.archive_in_launcher(env.get(cds.LAUNCHER_VARIABLE, ""))
    if launcher is not None and not launcher.is_file():
        return [CheckResult("CDS", WARN, f"launcher archive {launcher} is missing: spark-submit's launcher JVM starts without it", REBUILD)]
    launched = (
        f"launcher JVM: {launcher}"
        if launcher
        else f"not for spark-submit's launcher JVM ({cds.LAUNCHER_VARIABLE} has no archive; install … --replace adds it)"
    )
    return [CheckResult("CDS", OK, f"in use: {archive}; {launched}")]
