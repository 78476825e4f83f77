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


def test_java_too_old_for_spark_4_names_the_fix() -> None:
    old = JavaRuntime(Path("/opt/jdk8/bin/java"), 8, "1.8.0_392")
    with pytest.raises(SparkEnvironmentError) as refused:
        environment.require_java("4.3.0", old)
    assert "needs Java 17 or newer" in refused.value.problem
    assert refused.value.fix.startswith("install Java 17 or 21 or 25"), refused.value.fix
    environment.require_java("3.5.9", old)  # 3.5 still runs on Java 8
    environment.require_java("4.3.0", JavaRuntime(Path("/usr/bin/java"), 21, "21.0.4"))
    environment.require_java("4.0.0-preview2", JavaRuntime(Path("/usr/bin/java"), 17, "17.0.15"))
    with pytest.raises(SparkEnvironmentError, match="needs Java 17"):
        environment.require_java("4.9.0", JavaRuntime(Path("/usr/bin/java"), 11, "11.0.2"))  # unknown 4.x keeps the 4.x floor


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
        False, False, False, False, True, True,
    ]


def test_check_accepts_a_preview_or_vendor_build_of_the_same_release_and_refuses_another(tmp_path: Path) -> None:
    """The kernel's Python (this one, pip's pyspark) against jars named with other spellings of a version."""
    import pyspark

    from pyspark_kernel import doctor
    from pyspark_kernel.pythons import probe_python

    release = ".".join(str(part) for part in pyspark.__version__.split(".")[:3])
    kernel = probe_python(sys.executable, dict(os.environ))  # asked once, judged three times
    assert kernel.pyspark_version == pyspark.__version__ and kernel.has_kernel
    assert doctor.pyspark_result(kernel, f"{release}-preview1").status == doctor.OK
    vendor = doctor.pyspark_result(kernel, f"{release}-amzn-0")
    assert vendor.status == doctor.WARN and "vendor build" in vendor.detail, vendor
    assert doctor.pyspark_result(kernel, "3.5.9").status == doctor.FAIL
