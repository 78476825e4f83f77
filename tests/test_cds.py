"""JVM class-data sharing: the archive is built once per Java and Spark, and the kernel's JVM maps it."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from conftest import KernelHarness, cli, install
from pyspark_kernel import cds, environment

pytestmark = pytest.mark.slow


def test_install_builds_the_archive_and_the_kernel_jvm_maps_it(prefix: Path) -> None:
    folder = install(prefix, "--name", "with-cds", "--conf", "spark.driver.extraJavaOptions=-Dmine=1", "--replace")
    submit_args = json.loads((folder / "kernel.json").read_text())["env"]["PYSPARK_SUBMIT_ARGS"]
    archive = cds.archive_in_kernel(submit_args)
    assert archive is not None and archive.is_file() and archive == cds.archive_path(environment.resolve())
    assert f"spark.driver.extraJavaOptions=-Dmine=1 -XX:SharedArchiveFile={archive} -Xshare:auto" in shlex.split(submit_args), "the user's own options come first"
    kernel = KernelHarness(folder.name)
    try:
        assert kernel.value("spark.range(10).count()") == "10"
        assert kernel.value("'-Dmine=1' in spark.sparkContext.getConf().get('spark.driver.extraJavaOptions').split()") == "True"
        mapped = "".join(Path(f"/proc/{jvm.pid}/maps").read_text() for jvm in kernel.java_children())
        assert str(archive) in mapped, "the driver JVM did not map the class-data archive"
    finally:
        kernel.shutdown()
    checked = cli("check", "with-cds", "--prefix", str(prefix))
    assert f"OK    CDS         in use: {archive}" in checked.stdout
    # As in the image: another user, whose own cache folder is elsewhere, checks the same kernelspec.
    elsewhere = cli("check", "with-cds", "--prefix", str(prefix), env={**os.environ, "XDG_CACHE_HOME": str(prefix / "other-cache")})
    assert f"OK    CDS         in use: {archive}" in elsewhere.stdout, elsewhere.stdout


def test_no_cds_and_a_stale_archive(prefix: Path, tmp_path: Path) -> None:
    folder = install(prefix, "--name", "without-cds", "--no-cds", "--replace")
    assert "SharedArchiveFile" not in (folder / "kernel.json").read_text()
    assert "SKIP  CDS" in cli("check", "without-cds", "--prefix", str(prefix)).stdout
    stale = install(prefix, "--name", "stale-cds", "--conf", f"spark.driver.extraJavaOptions=-XX:SharedArchiveFile={tmp_path}/gone.jsa", "--no-cds", "--replace")
    checked = cli("check", stale.name, "--prefix", str(prefix))
    assert "WARN  CDS" in checked.stdout and "missing" in checked.stdout and checked.returncode == 0
    other = tmp_path / "spark-4.3.0-java-17-0123456789abcdef.jsa"  # made for another Java, Spark or jars
    other.write_bytes(b"archive")
    made_elsewhere = install(prefix, "--name", "other-cds", "--conf", f"spark.driver.extraJavaOptions=-XX:SharedArchiveFile={other}", "--no-cds", "--replace")
    checked = cli("check", made_elsewhere.name, "--prefix", str(prefix))
    assert "WARN  CDS" in checked.stdout and "made for another Java or Spark" in checked.stdout, checked.stdout


def test_a_missing_archive_does_not_stop_the_kernel(prefix: Path, tmp_path: Path) -> None:
    folder = install(prefix, "--name", "gone-cds", "--conf", f"spark.driver.extraJavaOptions=-XX:SharedArchiveFile={tmp_path}/gone.jsa -Xshare:auto", "--no-cds", "--replace")
    kernel = KernelHarness(folder.name)
    try:
        assert kernel.value("spark.range(3).count()") == "3"
    finally:
        kernel.shutdown()
