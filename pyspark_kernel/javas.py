"""Find the Java Spark's launcher will run, and hold Spark's rule for which Javas each Spark line runs on.

Shared like environment.py, which resolves the rest of a Spark environment: install and check refuse a
Java here, the kernel's pre-start check (kernel/jvm.py) refuses it in the same words, and the matrix
script picks its Javas from ``installed_javas``. It reads the filesystem and runs ``java -version``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pyspark_kernel.errors import SparkEnvironmentError
from pyspark_kernel.sparkhome import spark_release

# Java feature releases each Spark line supports, from the "Downloading" section of its docs
# (spark.apache.org/docs/<version>/): 3.3-3.5 "Java 8/11/17" (3.5 on 21 is only preliminary and
# untested upstream), 4.0-4.1 "Java 17/21", 4.2 "Java 17/21/25" (SPARK-56815 documented 25 on
# branch-4.2, not branch-4.1; tried here, 4.1.4 on 25.0.3 counts but a pandas UDF fails in Arrow's
# Netty allocator, UnsupportedOperationException). Any other Java, older or newer, is refused.
SUPPORTED_JAVA: dict[tuple[int, int], tuple[int, ...]] = {
    (3, 3): (8, 11, 17),
    (3, 4): (8, 11, 17),
    (3, 5): (8, 11, 17),
    (4, 0): (17, 21),
    (4, 1): (17, 21),
    (4, 2): (17, 21, 25),
    (4, 3): (17, 21, 25),
}
# The first update of a Java feature release that Spark's docs accept: "Java 25 prior to version
# 25.0.3 support is deprecated as of Spark 4.2.0" (G1 may evacuate pinned objects and corrupt data,
# JDK-8377811 / SPARK-55852; Spark's own build refuses 25.0.0-25.0.2, SPARK-56843).
FIRST_SAFE_UPDATE: dict[int, tuple[int, int, int]] = {25: (25, 0, 3)}


@dataclass(frozen=True)
class JavaRuntime:
    """The ``java`` Spark's launcher will run: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""

    executable: Path
    version: int  # the feature release: 8, 11, 17, 21 ...
    version_text: str  # as ``java -version`` printed it, e.g. 17.0.15


def java_command(environ: Mapping[str, str] | None = None) -> Path | None:
    """The java Spark's launcher runs: ``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else PATH's."""
    environ = os.environ if environ is None else environ  # the reads below take either
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


def find_java(environ: Mapping[str, str] | None = None) -> JavaRuntime:
    """Resolve the Java Spark would run and its version, or say how to install one."""
    executable = java_command(environ)
    if executable is None or not executable.exists():
        where = f"JAVA_HOME points at {executable.parent.parent}, which has no bin/java" if executable else "no java on PATH and JAVA_HOME is not set"
        raise SparkEnvironmentError(
            f"Java not found ({where}).", "install Java 17 or 21 (Debian/Ubuntu: sudo apt-get install default-jre-headless) or set JAVA_HOME."
        )
    try:
        result = subprocess.run([str(executable), "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SparkEnvironmentError(f"Could not run {executable} -version: {error}.", "repair that Java or set JAVA_HOME to another.") from error
    feature, text = parse_java_version(result.stderr + result.stdout)
    return JavaRuntime(executable=executable, version=feature, version_text=text)


def supported_javas(spark_version: str) -> tuple[int, ...] | None:
    """The Java feature releases ``spark_version`` runs on, or None when this table cannot judge it.

    A line newer than the table (say 4.9) is held to the newest known line of its major version, and
    may also run a Java newer than that line's newest (the table may be older than the release).
    A line older than the table, or of an unknown major version, is not judged.
    """
    line = spark_release(spark_version)[:2]
    if line in SUPPORTED_JAVA:
        return SUPPORTED_JAVA[line]
    same_major = sorted(known for known in SUPPORTED_JAVA if known[0] == line[0] and known < line)
    return SUPPORTED_JAVA[same_major[-1]] if same_major else None


def java_update(java: JavaRuntime) -> tuple[int, int, int]:
    """(feature, interim, update) of a Java: "25.0.3" -> (25, 0, 3), "25" and "25-ea" -> (25, 0, 0)."""
    numbers = [int(part) for part in re.findall(r"\d+", java.version_text.split("-")[0].split("+")[0])]
    if numbers[:1] == [1]:  # 1.8.0_392: feature 8, update 392
        return java.version, 0, numbers[3] if len(numbers) > 3 else 0
    numbers = (numbers + [0, 0, 0])[:3]
    return java.version, numbers[1], numbers[2]


def spoken_list(versions: tuple[int, ...] | list[int], conjunction: str = "or") -> str:
    """ "17, 21 or 25": the versions as a user reads them in a sentence."""
    words = [str(version) for version in versions]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


# Where Debian, Ubuntu and the Temurin packages put JDKs and JREs (one folder per Java, plus symlinks).
JVM_FOLDERS = ("/usr/lib/jvm",)


@functools.lru_cache(maxsize=8)
def installed_javas(folders: tuple[str, ...] = JVM_FOLDERS) -> tuple[JavaRuntime, ...]:
    """The Javas installed under ``folders`` (each a JAVA_HOME candidate), asked their version, each
    once however many symlinked names it has, and once per process. Used to say which JAVA_HOME
    fits, never to pick one silently."""
    found: dict[Path, JavaRuntime] = {}
    for folder in folders:
        for home in sorted(Path(folder).glob("*")) if Path(folder).is_dir() else []:
            executable = home / "bin" / "java"
            if home.is_symlink() or not executable.is_file() or executable.resolve() in found:
                continue
            try:
                found[executable.resolve()] = find_java({"JAVA_HOME": str(home)})
            except SparkEnvironmentError:
                continue
    return tuple(sorted(found.values(), key=java_update))


def java_refusal(spark_version: str, java: JavaRuntime) -> tuple[str, str] | None:
    """Spark's Java rule, the one place it is kept: (problem, fix) when ``java`` is not a Java that
    ``spark_version`` supports (too old, too new, a non-LTS in between, a deprecated update), else None."""
    supported = supported_javas(spark_version)
    if supported is None:
        return None
    line = ".".join(str(part) for part in spark_release(spark_version)[:2])
    newer_than_table = spark_release(spark_version)[:2] not in SUPPORTED_JAVA
    recommended = [version for version in supported if version >= 17] or list(supported)
    how = "set JAVA_HOME to it, or give it to the kernelspec: pyspark-kernel install --env JAVA_HOME /path/to/that/jdk (--replace for an existing one)"
    if not (java.version in supported or (newer_than_table and java.version > max(supported))):
        return (
            f"Spark {spark_version} does not run on Java {java.version} ({java.executable} is {java.version_text}); "
            f"Spark {line} supports Java {spoken_list(supported, 'and')}.",
            f"use Java {spoken_list(recommended)}: {how}",
        )
    first_safe = FIRST_SAFE_UPDATE.get(java.version)
    if first_safe and java_update(java) < first_safe:
        safe = ".".join(str(part) for part in first_safe)
        others = [version for version in recommended if version != java.version]
        instead = f", or Java {spoken_list(others)}" if others else ""
        return (
            f"{java.executable} is Java {java.version_text}: Spark {line} does not support Java {java.version} before {safe} "
            f"(its G1 collector can corrupt data, JDK-8377811).",
            f"update to Java {safe} or newer{instead}: {how}",
        )
    return None


def require_java(spark_version: str, java: JavaRuntime) -> None:
    """Raise ``java_refusal``'s problem and fix, naming the installed Javas that would fit."""
    refusal = java_refusal(spark_version, java)
    if refusal is None:
        return
    problem, fix = refusal
    fitting = [f"{other.executable.parent.parent} (Java {other.version_text})" for other in installed_javas() if java_refusal(spark_version, other) is None]
    raise SparkEnvironmentError(problem, f"{fix}; this machine has {', '.join(fitting)}." if fitting else f"{fix}.")
