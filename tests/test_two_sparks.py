"""Two Sparks side by side, as users of a cluster install have them: pip's pyspark 4.3 and a Spark 3.5.9
folder, each with its own kernelspec, in one environment where pyspark 4.3 is installed too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SPARK_359, KernelHarness, install

pytestmark = pytest.mark.slow


def test_kernelspec_for_spark_359_folder_uses_its_own_pyspark(prefix: Path, spark_359_home: Path) -> None:
    folder = install(prefix, "--name", "spark359", "--spark-home", str(spark_359_home), "--master", "local[2]", "--replace")
    env = json.loads((folder / "kernel.json").read_text())["env"]
    # pip's layout: python/pyspark is a stub, so the real package comes from python/lib/pyspark.zip.
    assert env["PYTHONPATH"].split(":") == [str(spark_359_home / "python/lib/pyspark.zip"), str(spark_359_home / "python/lib/py4j-0.10.9.7-src.zip")]
    kernel = KernelHarness(folder.name)
    try:
        assert kernel.value("spark.version") == f"'{SPARK_359}'"
        assert kernel.value("import pyspark; pyspark.__version__") == f"'{SPARK_359}'"
        assert kernel.value("spark.range(10).count()") == "10"
    finally:
        kernel.shutdown()


def test_default_kernelspec_beside_it_stays_on_43(spark_kernel: KernelHarness) -> None:
    assert spark_kernel.value("spark.version").startswith("'4.3")


def test_check_passes_for_the_359_kernelspec(prefix: Path, spark_359_home: Path) -> None:
    from conftest import cli

    install(prefix, "--name", "spark359check", "--spark-home", str(spark_359_home), "--replace")
    result = cli("check", "spark359check", "--prefix", str(prefix))
    assert result.returncode == 0, result.stdout
    assert f"pyspark {SPARK_359}" in result.stdout
