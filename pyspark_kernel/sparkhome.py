"""Where Spark is, and what its folder says: its version and Scala's, its py4j zip, its pyspark package.

Answered from the filesystem alone (no process is started), in findspark's search order, so it is the
cheap first half of environment.resolve: install checks a --spark-home with it before it looks at
the kernelspec's destination or asks a Python or a Java anything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pyspark_kernel.errors import SparkEnvironmentError
from pyspark_kernel.pythons import pip_pyspark_home

# Common install locations, looked at last: after the explicit argument, SPARK_HOME and pip's pyspark.
COMMON_SPARK_HOMES = ("/opt/spark", "/usr/local/spark", "/usr/lib/spark", "/opt/homebrew/opt/apache-spark/libexec")


def find_spark_home(explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Answer "where is Spark": the argument, then $SPARK_HOME, then pip's pyspark, then common paths."""
    environ = os.environ if environ is None else environ  # the reads below take either
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
        "pip install pyspark, or pass --spark-home /path/to/spark.",
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
            f"SPARK_HOME {spark_home} does not exist.", "pass --spark-home with the folder of a Spark install (it holds bin/ and jars/)."
        )
    if not jars.is_dir():
        raise SparkEnvironmentError(
            f"{spark_home} is not a Spark: it has no jars/ folder.",
            "pass --spark-home with the top folder of a Spark distribution or of pip's pyspark package.",
        )
    for jar in sorted(jars.glob("spark-core_*.jar")):
        match = re.fullmatch(r"spark-core_(\d+\.\d+)-(\d+\.\d+\.\d+[\w.-]*)\.jar", jar.name)
        if match:
            return match.group(2), match.group(1)
    raise SparkEnvironmentError(
        f"{jars} has no spark-core_<scala>-<version>.jar, so its Spark version is unknown.", "point --spark-home at a complete Spark install."
    )


def find_py4j_zip(spark_home: Path) -> Path:
    """The py4j source zip under ``python/lib``; kernel.json cannot hold a wildcard, so resolve it now."""
    lib = spark_home / "python" / "lib"
    zips = sorted(lib.glob("py4j-*-src.zip"))
    if not zips:
        raise SparkEnvironmentError(
            f"No py4j zip in {lib} (expected py4j-<version>-src.zip).", "reinstall Spark there, or pass --spark-home with a complete Spark install."
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
        "point --spark-home at a Spark distribution or at pip's pyspark folder.",
    )


@dataclass(frozen=True)
class SparkInstall:
    """One Spark install as its folder tells it."""

    home: Path
    version: str  # of the jars, e.g. 4.3.0
    scala_version: str  # e.g. 2.13
    py4j_zip: Path


def find_spark(explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> SparkInstall:
    """The Spark ``find_spark_home`` finds, with its version and py4j zip, or the error that says what is
    missing from its folder and how to point at a whole Spark."""
    home = find_spark_home(explicit, environ)
    version, scala_version = spark_version_of(home)
    return SparkInstall(home, version, scala_version, find_py4j_zip(home))
