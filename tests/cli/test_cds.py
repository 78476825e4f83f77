"""JVM class-data sharing: the archive is built once per Java and Spark, and the kernel's JVM maps it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import KernelHarness, cli, install

from pyspark_kernel import environment, submitargs
from pyspark_kernel.cli import cds

pytestmark = pytest.mark.slow


def test_install_builds_the_archive_and_the_kernel_jvm_maps_it(prefix: Path) -> None:
    folder = install(prefix, "--name", "with-cds", "--conf", "spark.driver.extraJavaOptions=-Dmine=1", "--replace")
    submit_args = json.loads((folder / "kernel.json").read_text())["env"]["PYSPARK_SUBMIT_ARGS"]
    archive = cds.archive_in_kernel(submit_args)
    assert archive is not None and archive.is_file() and archive == cds.archive_path(environment.resolve())
    assert f"spark.driver.extraJavaOptions=-Dmine=1 -XX:SharedArchiveFile={archive} -Xshare:auto" in shlex.split(submit_args), (
        "the user's own options come first"
    )
    kernel = KernelHarness(folder.name)
    try:
        assert kernel.value("spark.range(10).count()") == "10"
        assert kernel.value("'-Dmine=1' in spark.sparkContext.getConf().get('spark.driver.extraJavaOptions').split()") == "True"
        mapped = "".join(Path(f"/proc/{jvm.pid}/maps").read_text() for jvm in kernel.java_children())
        assert str(archive) in mapped, "the driver JVM did not map the class-data archive"
        # The archive was trained on the session a kernel makes: the same master and session conf.
        training = submitargs.parse(cds.training_submit_args())
        assert kernel.value("sc.master") == repr(training.master)
        for key, value in training.conf.items():
            if key != "spark.app.name":  # the kernel names its app after the notebook
                assert kernel.value(f"sc.getConf().get({key!r})") == repr(value), key
    finally:
        kernel.shutdown()
    checked = cli("check", "with-cds", "--prefix", str(prefix))
    assert f"OK    CDS         in use: {archive}" in checked.stdout
    assert f"launcher JVM: {cds.launcher_archive_path(environment.resolve())}" in checked.stdout, checked.stdout
    # As in the image: another user, whose own cache folder is elsewhere, checks the same kernelspec.
    elsewhere = cli("check", "with-cds", "--prefix", str(prefix), env={**os.environ, "XDG_CACHE_HOME": str(prefix / "other-cache")})
    assert f"OK    CDS         in use: {archive}" in elsewhere.stdout, elsewhere.stdout


def test_spark_submits_launcher_jvm_maps_its_own_archive(prefix: Path, tmp_path: Path) -> None:
    """bin/spark-class runs a launcher JVM (org.apache.spark.launcher.Main) before the driver's: the
    kernelspec gives it an archive through SPARK_LAUNCHER_OPTS, which only that JVM reads."""
    folder = install(prefix, "--name", "launcher-cds", "--replace")
    env = json.loads((folder / "kernel.json").read_text())["env"]
    launcher = cds.archive_in_launcher(env["SPARK_LAUNCHER_OPTS"])
    assert launcher == cds.launcher_archive_path(environment.resolve()) and launcher.is_file()
    assert "-XX:TieredStopAtLevel=1" in env["SPARK_LAUNCHER_OPTS"].split()
    log = tmp_path / "launcher-classes.log"
    # -Xshare:on turns an archive that does not fit into an error instead of a quiet start without it
    run_env = {**os.environ, **env, "SPARK_LAUNCHER_OPTS": f"{env['SPARK_LAUNCHER_OPTS']} -Xshare:on -Xlog:class+load=info:file={log}"}
    run_env.pop("PYSPARK_SUBMIT_ARGS")
    result = subprocess.run(
        [f"{env['SPARK_HOME']}/bin/spark-class", "org.apache.spark.deploy.SparkSubmit", "--version"], env=run_env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    main = [line for line in log.read_text().splitlines() if " org.apache.spark.launcher.Main " in line]
    assert main and "source: shared objects file (top)" in main[0], main


def test_a_missing_launcher_archive_is_reported(prefix: Path, tmp_path: Path) -> None:
    driver = cds.build_archive(environment.resolve())
    folder = install(
        prefix,
        "--name",
        "gone-launcher",
        "--no-cds",
        "--replace",
        "--conf",
        f"spark.driver.extraJavaOptions={cds.java_options(driver)}",
        "--env",
        "SPARK_LAUNCHER_OPTS",
        f"-XX:SharedArchiveFile={tmp_path}/gone.jsa -Xshare:auto",
    )
    checked = cli("check", folder.name, "--prefix", str(prefix))
    assert f"WARN  CDS         launcher archive {tmp_path}/gone.jsa is missing" in checked.stdout, checked.stdout


def test_no_cds_and_a_stale_archive(prefix: Path, tmp_path: Path) -> None:
    folder = install(prefix, "--name", "without-cds", "--no-cds", "--replace")
    assert "SharedArchiveFile" not in (folder / "kernel.json").read_text()
    assert "SKIP  CDS" in cli("check", "without-cds", "--prefix", str(prefix)).stdout
    stale = install(
        prefix, "--name", "stale-cds", "--conf", f"spark.driver.extraJavaOptions=-XX:SharedArchiveFile={tmp_path}/gone.jsa", "--no-cds", "--replace"
    )
    checked = cli("check", stale.name, "--prefix", str(prefix))
    assert "WARN  CDS" in checked.stdout and "missing" in checked.stdout and checked.returncode == 0
    other = tmp_path / "spark-4.3.0-java-17-0123456789abcdef.jsa"  # made for another Java, Spark or jars
    other.write_bytes(b"archive")
    made_elsewhere = install(prefix, "--name", "other-cds", "--conf", f"spark.driver.extraJavaOptions=-XX:SharedArchiveFile={other}", "--no-cds", "--replace")
    checked = cli("check", made_elsewhere.name, "--prefix", str(prefix))
    assert "WARN  CDS" in checked.stdout and "made for another Java or Spark" in checked.stdout, checked.stdout


def test_a_missing_archive_does_not_stop_the_kernel(prefix: Path, tmp_path: Path) -> None:
    """A kernelspec installed with its archives (the default), whose cache was cleaned since: check warns,
    and the kernel starts without them. The archives are copies in a cache folder of this test's, so the
    install builds nothing and the shared cache keeps its own."""
    spark = environment.resolve()
    driver, launcher = cds.build_archive(spark), cds.launcher_archive(spark)
    assert driver is not None and launcher is not None
    cache = tmp_path / "cache"
    (cache / "pyspark-kernel" / "cds").mkdir(parents=True)
    for archive in (driver, launcher):
        shutil.copy(archive, cache / "pyspark-kernel" / "cds" / archive.name)
    own_cache = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    installed = cli("install", "--prefix", str(prefix), "--name", "gone-cds", "--replace", env=own_cache)
    assert installed.returncode == 0 and "Building" not in installed.stderr, installed.stderr
    env = json.loads((prefix / "share" / "jupyter" / "kernels" / "gone-cds" / "kernel.json").read_text())["env"]
    gone = [cds.archive_in_kernel(env["PYSPARK_SUBMIT_ARGS"]), cds.archive_in_launcher(env[cds.LAUNCHER_VARIABLE])]
    assert gone == [cache / "pyspark-kernel" / "cds" / driver.name, cache / "pyspark-kernel" / "cds" / launcher.name], gone
    shutil.rmtree(cache)
    checked = cli("check", "gone-cds", "--prefix", str(prefix))
    assert f"WARN  CDS         archive {gone[0]} is missing" in checked.stdout, checked.stdout
    kernel = KernelHarness("gone-cds")
    try:
        assert kernel.value("spark.range(3).count()") == "3"
    finally:
        kernel.shutdown()
