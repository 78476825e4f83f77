"""Resolve the Spark environment a kernel runs in: SPARK_HOME, its pyspark and py4j, Java, Python.

This is the first step of the data path (CLI arguments -> environment -> kernel.json -> kernel ->
SparkSession). It is shared by ``install``, ``check``, the kernel's pre-start checks and the launcher
plugin, so a Spark that is wrong is reported with the same words wherever it is found. It reads the
filesystem and runs ``java -version`` and the kernel's Python; it writes nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import SparkEnvironmentError
from .pythons import kernel_python, pip_pyspark_home

# Java feature releases each Spark line is built and tested for (Spark's "Downloading" docs).
SUPPORTED_JAVA: dict[tuple[int, int], tuple[int, ...]] = {
    (3, 3): (8, 11, 17),
    (3, 4): (8, 11, 17),
    (3, 5): (8, 11, 17, 21),
    (4, 0): (17, 21),
    (4, 1): (17, 21),
    (4, 2): (17, 21, 25),
    (4, 3): (17, 21, 25),
}

# Common install locations, looked at last: after the explicit argument, SPARK_HOME and pip's pyspark.
COMMON_SPARK_HOMES = ("/opt/spark", "/usr/local/spark", "/usr/lib/spark", "/opt/homebrew/opt/apache-spark/libexec")


@dataclass(frozen=True)
class JavaRuntime:
    """The ``java`` Spark's launcher will run: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""

    executable: Path
    version: int  # the feature release: 8, 11, 17, 21 ...
    version_text: str  # as ``java -version`` printed it, e.g. 17.0.15


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


def find_spark_home(explicit: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Path:
    """Answer "where is Spark": the argument, then $SPARK_HOME, then pip's pyspark, then common paths."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit).expanduser().absolute()
    if environ.get("SPARK_HOME"):
        return Path(environ["SPARK_HOME"]).expanduser().absolute()
    pip_spark = pip_pyspark_home()
    if pip_spark is not None:
        return pip_spark
    for candidate in COMMON_SPARK_HOMES:
        if (Path(candidate) / "jars").is_dir():
            return Path(candidate)
    raise SparkEnvironmentError(
        "No Spark found: --spark-home was not given, SPARK_HOME is not set and pyspark is not installed.",
        "pip install pyspark, or pass --spark-home /path/to/spark."
    )


def spark_release(version: str) -> tuple[int, int, int]:
    """The release numbers of a Spark or pyspark version, as packaging's ``Version.release`` reads them.

    Compared instead of the whole strings: pip's ``4.0.0.dev2`` and the jars' ``4.0.0-preview2`` are one
    release, and so are ``3.5.1`` and a vendor build's ``3.5.1-amzn-0``.
    """
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        raise SparkEnvironmentError(f"{version!r} is not a Spark version.", "point --spark-home at a Spark install.")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def is_vendor_build(version: str) -> bool:
    """A version with more than a release and a preview/dev/rc mark: a vendor's own build of Spark."""
    return re.fullmatch(r"\d+\.\d+(\.\d+)?([.-]?(preview|dev|rc)\d*)?", version) is None


def spark_version_of(spark_home: Path) -> tuple[str, str]:
    """(spark_version, scala_version) read from the name of ``jars/spark-core_<scala>-<version>.jar``."""
    jars = spark_home / "jars"
    if not spark_home.is_dir():
        raise SparkEnvironmentError(
            f"SPARK_HOME {spark_home} does not exist.",
            "pass --spark-home with the folder of a Spark install (it holds bin/ and jars/)."
        )
    if not jars.is_dir():
        raise SparkEnvironmentError(
            f"{spark_home} is not a Spark: it has no jars/ folder.",
            "pass --spark-home with the top folder of a Spark distribution or of pip's pyspark package."
        )
    for jar in sorted(jars.glob("spark-core_*.jar")):
        match = re.fullmatch(r"spark-core_(\d+\.\d+)-(\d+\.\d+\.\d+[\w.-]*)\.jar", jar.name)
        if match:
            return match.group(2), match.group(1)
    raise SparkEnvironmentError(
        f"{jars} has no spark-core_<scala>-<version>.jar, so its Spark version is unknown.",
        "point --spark-home at a complete Spark install."
    )


def find_py4j_zip(spark_home: Path) -> Path:
    """The py4j source zip under ``python/lib``; kernel.json cannot hold a wildcard, so resolve it now."""
    lib = spark_home / "python" / "lib"
    zips = sorted(lib.glob("py4j-*-src.zip"))
    if not zips:
        raise SparkEnvironmentError(
            f"No py4j zip in {lib} (expected py4j-<version>-src.zip).",
            "reinstall Spark there, or pass --spark-home with a complete Spark install."
        )
    return zips[-1]


def find_pyspark_path(spark_home: Path, python_pyspark_home: Path | None) -> Path | None:
    """Which PYTHONPATH entry imports the pyspark of ``spark_home`` (None: the kernel's Python already does).

    A Spark distribution has the real package in ``python/pyspark``. In pip's layout that folder is a
    stub (no ``__init__.py``) and the package is the SPARK_HOME folder itself, with a copy zipped in
    ``python/lib/pyspark.zip``; putting ``python/`` on PYTHONPATH there would import whatever other
    pyspark the Python has, against these jars (see SPARK-ENV-NOTES: 'JavaPackage' is not callable).
    """
    if (spark_home / "python" / "pyspark" / "__init__.py").is_file():
        return spark_home / "python"
    if python_pyspark_home is not None and python_pyspark_home.resolve() == spark_home.resolve():
        return None  # the kernel's own pip pyspark: import it from site-packages, with its .pyc cache
    zipped = spark_home / "python" / "lib" / "pyspark.zip"
    if zipped.is_file():
        return zipped
    raise SparkEnvironmentError(
        f"{spark_home} has no pyspark package (neither python/pyspark/__init__.py nor python/lib/pyspark.zip).",
        "point --spark-home at a Spark distribution or at pip's pyspark folder."
    )


def java_command(environ: dict[str, str] | None = None) -> Path | None:
    """The java Spark's launcher runs: ``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else PATH's."""
    environ = os.environ if environ is None else environ
    if environ.get("JAVA_HOME"):
        return Path(environ["JAVA_HOME"]) / "bin" / "java"
    found = shutil.which("java", path=environ.get("PATH"))
    return Path(found) if found else None


def parse_java_version(version_output: str) -> tuple[int, str]:
    """(feature release, version text) from ``java -version`` output: "1.8.0_392" -> 8, "17.0.15" -> 17."""
    match = re.search(r'version "([^"]+)"', version_output)
    if not match:
        raise SparkEnvironmentError(f"Could not read a Java version from: {version_output.strip()[:200]!r}")
    text = match.group(1)
    parts = re.split(r"[._+-]", text)
    feature = int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(parts[0])
    return feature, text


def find_java(environ: dict[str, str] | None = None) -> JavaRuntime:
    """Resolve the Java Spark would run and its version, or say how to install one."""
    executable = java_command(environ)
    if executable is None or not executable.exists():
        where = f"JAVA_HOME points at {executable.parent.parent}, which has no bin/java" if executable else "no java on PATH and JAVA_HOME is not set"
        raise SparkEnvironmentError(
            f"Java not found ({where}).",
            "install Java 17 or 21 (Debian/Ubuntu: sudo apt-get install default-jre-headless) or set JAVA_HOME."
        )
    try:
        result = subprocess.run([str(executable), "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SparkEnvironmentError(f"Could not run {executable} -version: {error}.", "repair that Java or set JAVA_HOME to another.") from error
    feature, text = parse_java_version(result.stderr + result.stdout)
    return JavaRuntime(executable=executable, version=feature, version_text=text)


def require_java(spark_version: str, java: JavaRuntime) -> None:
    """Spark's Java rule, the one place it is kept: raise with the fix when ``java`` cannot run
    ``spark_version``. Javas newer than the table pass (Spark warns itself if it must)."""
    major_minor = spark_release(spark_version)[:2]
    supported = SUPPORTED_JAVA.get(major_minor)
    if supported is None:
        # A Spark newer than this table: hold it to the floor of its major line.
        same_major = [versions for (major, _), versions in SUPPORTED_JAVA.items() if major == major_minor[0]]
        supported = same_major[-1] if same_major else None
    if supported is None or java.version >= min(supported):
        return
    wanted = " or ".join(str(version) for version in supported if version >= 17) or str(min(supported))
    raise SparkEnvironmentError(
        f"Spark {spark_version} needs Java {min(supported)} or newer, but {java.executable} is Java {java.version_text}.",
        f"install Java {wanted} (sudo apt-get install default-jre-headless) and set JAVA_HOME to it.",
    )


def resolve(
    spark_home: str | os.PathLike[str] | None = None,
    python: str | os.PathLike[str] | None = None,
    *,
    need_java: bool = True,
    environ: dict[str, str] | None = None,
) -> SparkEnvironment:
    """Resolve one Spark environment, or raise SparkEnvironmentError naming the problem and the fix."""
    home = find_spark_home(spark_home, environ)
    spark_version, scala_version = spark_version_of(home)
    py4j_zip = find_py4j_zip(home)
    kernel = kernel_python(python or sys.executable)
    pyspark_path = find_pyspark_path(home, kernel.pyspark_home)
    java = None
    if need_java:
        java = find_java(environ)
        require_java(spark_version, java)
    return SparkEnvironment(
        spark_home=home,
        spark_version=spark_version,
        scala_version=scala_version,
        py4j_zip=py4j_zip,
        pyspark_path=pyspark_path,
        python=kernel.executable,
        python_version=kernel.version,
        java=java,
    )
