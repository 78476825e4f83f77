"""Resolving a Spark environment from real folders, real Java and real Pythons."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyspark
import pytest

from pyspark_kernel import environment
from pyspark_kernel.environment import JavaRuntime, SparkEnvironmentError


def test_resolves_pip_pyspark_as_a_whole_spark() -> None:
    spark = environment.resolve(environ={"PATH": "/usr/bin:/bin"})
    assert spark.spark_home == Path(pyspark.__file__).parent
    assert spark.spark_version == pyspark.__version__ and spark.scala_version == "2.13"
    assert spark.py4j_zip.name.startswith("py4j-") and spark.py4j_zip.is_file()
    assert spark.pyspark_path is None, "the kernel's own pip pyspark is imported from site-packages"
    assert spark.python == Path(sys.executable)
    assert spark.java is not None and spark.java.version >= 17


def test_search_order_argument_then_spark_home_then_pip(tmp_path: Path) -> None:
    assert environment.find_spark_home(tmp_path, {"SPARK_HOME": "/elsewhere"}) == tmp_path
    assert environment.find_spark_home(None, {"SPARK_HOME": str(tmp_path)}) == tmp_path
    assert environment.find_spark_home(None, {}) == Path(pyspark.__file__).parent


def test_distribution_layout_puts_python_folder_on_path(tmp_path: Path) -> None:
    (tmp_path / "python" / "pyspark").mkdir(parents=True)
    (tmp_path / "python" / "pyspark" / "__init__.py").write_text("")
    assert environment.find_pyspark_path(tmp_path, None) == tmp_path / "python"


def test_pip_layout_of_another_spark_uses_its_zip(tmp_path: Path) -> None:
    (tmp_path / "python" / "pyspark").mkdir(parents=True)  # pip's stub: shell.py, no __init__.py
    (tmp_path / "python" / "lib").mkdir()
    (tmp_path / "python" / "lib" / "pyspark.zip").write_bytes(b"")
    assert environment.find_pyspark_path(tmp_path, Path(pyspark.__file__).parent) == tmp_path / "python" / "lib" / "pyspark.zip"


def test_folder_without_any_pyspark(tmp_path: Path) -> None:
    with pytest.raises(SparkEnvironmentError, match="has no pyspark package"):
        environment.find_pyspark_path(tmp_path, None)


@pytest.mark.parametrize(
    "output, feature, text",
    [
        ('openjdk version "17.0.15" 2025-04-15', 17, "17.0.15"),
        ('java version "1.8.0_392"', 8, "1.8.0_392"),
        ('openjdk version "21" 2023-09-19', 21, "21"),
        ('openjdk version "25-ea" 2025-09-16', 25, "25-ea"),
    ],
)
def test_parse_java_version(output: str, feature: int, text: str) -> None:
    assert environment.parse_java_version(output) == (feature, text)


def java(version_text: str) -> JavaRuntime:
    feature, text = environment.parse_java_version(f'openjdk version "{version_text}"')
    return JavaRuntime(Path(f"/opt/jdk-{text}/bin/java"), feature, text)


# Spark's docs, line by line: 3.5 "Java 8/11/17"; 4.0 and 4.1 "Java 17/21"; 4.2 "Java 17/21/25",
# with 25 before 25.0.3 deprecated. Every other pair is refused, newer Javas included.
@pytest.mark.parametrize(
    "spark, java_text, accepted",
    [
        ("3.5.9", "1.8.0_392", True),
        ("3.5.9", "11.0.2", True),
        ("3.5.9", "17.0.15", True),
        ("3.5.9", "21.0.4", False),
        ("3.5.9", "25.0.3", False),
        ("4.0.5", "11.0.2", False),
        ("4.0.5", "17.0.15", True),
        ("4.0.5", "21.0.4", True),
        ("4.0.5", "25.0.3", False),
        ("4.0.0-preview2", "17.0.15", True),
        ("4.1.4", "17.0.15", True),
        ("4.1.4", "21.0.4", True),
        ("4.1.4", "25.0.3", False),
        ("4.2.1", "21.0.4", True),
        ("4.2.1", "25.0.3", True),
        ("4.2.1", "25.0.2", False),
        ("4.2.1", "25", False),
        ("4.3.0", "11.0.2", False),
        ("4.3.0", "17.0.15", True),
        ("4.3.0", "22.0.1", False),
        ("4.3.0", "25.0.3", True),
        ("4.3.0", "25.0.10", True),
        ("4.3.0", "25-ea", False),
        ("4.3.0", "26", False),
        ("4.9.0", "11.0.2", False),
        ("4.9.0", "17.0.15", True),
        ("4.9.0", "26", True),  # newer than the table: 4.3's floor
    ],
)
def test_spark_java_rule(spark: str, java_text: str, accepted: bool) -> None:
    if accepted:
        environment.require_java(spark, java(java_text))
    else:
        with pytest.raises(SparkEnvironmentError):
            environment.require_java(spark, java(java_text))


def test_java_too_new_names_the_supported_javas_and_the_fix() -> None:
    with pytest.raises(SparkEnvironmentError) as refused:
        environment.require_java("4.0.5", java("25.0.3"))
    assert refused.value.problem == ("Spark 4.0.5 does not run on Java 25 (/opt/jdk-25.0.3/bin/java is 25.0.3); Spark 4.0 supports Java 17 and 21.")
    assert refused.value.fix.startswith("use Java 17 or 21: set JAVA_HOME to it, or give it to the kernelspec: pyspark-kernel install --env JAVA_HOME"), (
        refused.value.fix
    )


def test_java_too_old_names_the_fix() -> None:
    with pytest.raises(SparkEnvironmentError) as refused:
        environment.require_java("4.3.0", java("1.8.0_392"))
    assert "does not run on Java 8" in refused.value.problem and "supports Java 17, 21 and 25" in refused.value.problem
    assert refused.value.fix.startswith("use Java 17, 21 or 25:"), refused.value.fix


def test_java_25_before_25_0_3_is_refused_with_the_update_as_fix() -> None:
    with pytest.raises(SparkEnvironmentError) as refused:
        environment.require_java("4.3.0", java("25.0.1"))
    assert "does not support Java 25 before 25.0.3" in refused.value.problem
    assert refused.value.fix.startswith("update to Java 25.0.3 or newer, or Java 17 or 21:"), refused.value.fix


def test_a_spark_line_older_than_the_table_is_not_judged() -> None:
    environment.require_java("2.4.8", java("25.0.3"))


def test_java_home_wins_over_path(tmp_path: Path) -> None:
    assert environment.java_command({"JAVA_HOME": str(tmp_path), "PATH": "/usr/bin"}) == tmp_path / "bin" / "java"
    with pytest.raises(SparkEnvironmentError, match="JAVA_HOME points at"):
        environment.find_java({"JAVA_HOME": str(tmp_path)})


def test_real_java_is_found_and_read() -> None:
    java = environment.find_java({"PATH": "/usr/bin:/bin"})
    assert java.executable.name == "java" and java.version >= 17


def test_pip_and_jar_versions_are_compared_by_release() -> None:
    from pyspark_kernel.environment import is_vendor_build, spark_release

    assert spark_release("4.0.0.dev2") == spark_release("4.0.0-preview2") == (4, 0, 0)
    assert spark_release("3.5.1-amzn-0") == spark_release("3.5.1") != spark_release("3.5.2")
    assert spark_release("4.1") == (4, 1, 0)
    assert [is_vendor_build(v) for v in ("4.3.0", "4.0.0-preview2", "4.0.0.dev2", "4.1.0rc1", "3.5.1-amzn-0", "3.3.2.3.3.7190.0-91")] == [
        False,
        False,
        False,
        False,
        True,
        True,
    ]


def test_check_accepts_a_preview_or_vendor_build_of_the_same_release_and_refuses_another(tmp_path: Path) -> None:
    """The kernel's Python (this one, pip's pyspark) against jars named with other spellings of a version."""
    import pyspark

    from pyspark_kernel.cli import doctor
    from pyspark_kernel.pythons import probe_python

    release = ".".join(str(part) for part in pyspark.__version__.split(".")[:3])
    kernel = probe_python(sys.executable, dict(os.environ))  # asked once, judged three times
    assert kernel.pyspark_version == pyspark.__version__ and kernel.has_kernel
    assert doctor.pyspark_result(kernel, f"{release}-preview1").status == doctor.OK
    vendor = doctor.pyspark_result(kernel, f"{release}-amzn-0")
    assert vendor.status == doctor.WARN and "vendor build" in vendor.detail, vendor
    assert doctor.pyspark_result(kernel, "3.5.9").status == doctor.FAIL


def test_installed_javas_lists_each_real_java_once(tmp_path: Path) -> None:
    """Real Javas of this machine, seen under a folder of its own: a symlinked name and a folder
    without bin/java are not candidates."""
    real = environment.find_java({"PATH": "/usr/bin:/bin"}).executable.resolve().parent.parent
    (tmp_path / "jdk-real").symlink_to(real, target_is_directory=True)  # stands for a JDK folder...
    (tmp_path / "not-a-jdk").mkdir()
    found = environment.installed_javas((str(tmp_path),))
    assert found == (), "a symlinked name is skipped (Debian's java-1.17.0-openjdk-amd64 -> java-17-openjdk-amd64)"
    (tmp_path / "jdk-real").unlink()
    (tmp_path / "jdk" / "bin").mkdir(parents=True)
    (tmp_path / "jdk" / "bin" / "java").symlink_to(real / "bin" / "java")
    (tmp_path / "same-jdk" / "bin").mkdir(parents=True)
    (tmp_path / "same-jdk" / "bin" / "java").symlink_to(real / "bin" / "java")
    environment.installed_javas.cache_clear()  # asked once per process: forget the first look
    found = environment.installed_javas((str(tmp_path),))
    assert [java.executable for java in found] == [tmp_path / "jdk" / "bin" / "java"] and found[0].version >= 17


def test_refusal_names_a_java_of_this_machine_that_fits() -> None:
    fitting = [found for found in environment.installed_javas() if found.version in (17, 21)]
    with pytest.raises(SparkEnvironmentError) as refused:
        environment.require_java("4.0.5", java("25.0.3"))
    if fitting:
        assert f"this machine has {fitting[0].executable.parent.parent} (Java {fitting[0].version_text})" in refused.value.fix
    else:
        assert "this machine has" not in refused.value.fix
