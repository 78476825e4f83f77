"""Pure functions that turn a resolved environment and options into kernel.json."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from pyspark_kernel import submitargs
from pyspark_kernel.cli import kernelspec, options
from pyspark_kernel.cli.options import SparkOptions
from pyspark_kernel.environment import JavaRuntime, SparkEnvironment
from pyspark_kernel.errors import ConfPairError, KernelSpecError
from pyspark_kernel.kernel.settings import SessionSettings

SPARK = SparkEnvironment(
    spark_home=Path("/opt/spark"),
    spark_version="4.3.0",
    scala_version="2.13",
    py4j_zip=Path("/opt/spark/python/lib/py4j-0.10.9.9-src.zip"),
    pyspark_path=Path("/opt/spark/python"),
    python=Path(sys.executable),
    python_version="3.11",
    java=JavaRuntime(Path("/usr/bin/java"), 17, "17.0.15"),
)


def test_submit_args_quote_every_value_and_end_in_pyspark_shell() -> None:
    options = SparkOptions(master="local[4]", conf={"spark.driver.extraJavaOptions": "-Da=1 -Db=2"}, packages="g:a:1,g:b:2")
    args = kernelspec.submit_args(options)
    assert shlex.split(args) == ["--master", "local[4]", "--packages", "g:a:1,g:b:2", "--conf", "spark.driver.extraJavaOptions=-Da=1 -Db=2", "pyspark-shell"]


def test_session_reads_back_the_conf_the_kernelspec_wrote() -> None:
    """The two ends of the data path agree: what kernelspec.py writes, session.py reads."""
    options = SparkOptions(conf={"spark.app.name": "mine", "spark.x": "a=b"})
    settings = SessionSettings.from_environ({"PYSPARK_SUBMIT_ARGS": kernelspec.submit_args(options)})
    assert settings.user_conf() == {"spark.app.name": "mine", "spark.x": "a=b"}


def test_env_uses_sparks_own_variables() -> None:
    env = kernelspec.kernel_env(SPARK, SparkOptions(py_files="/a.zip,/b.py"))
    assert env["SPARK_HOME"] == "/opt/spark"
    assert env["PYTHONPATH"].split(":") == ["/opt/spark/python", "/opt/spark/python/lib/py4j-0.10.9.9-src.zip", "/a.zip", "/b.py"]
    assert env["PYSPARK_PYTHON"] == env["PYSPARK_DRIVER_PYTHON"] == sys.executable
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1"


def test_cluster_master_does_not_pin_loopback_and_remote_has_no_submit_args() -> None:
    assert "SPARK_LOCAL_IP" not in kernelspec.kernel_env(SPARK, SparkOptions(master="spark://h:7077"))
    remote = kernelspec.kernel_env(SPARK, SparkOptions(remote="sc://127.0.0.1:15002"))
    assert remote["SPARK_REMOTE"] == "sc://127.0.0.1:15002" and "PYSPARK_SUBMIT_ARGS" not in remote


def test_user_env_overrides_defaults() -> None:
    env = kernelspec.kernel_env(SPARK, SparkOptions(env={"SPARK_LOCAL_IP": "0.0.0.0"}))
    assert env["SPARK_LOCAL_IP"] == "0.0.0.0"


def test_kernel_json_records_what_it_was_built_from() -> None:
    spec = kernelspec.kernel_json(SPARK, SparkOptions(display_name="Spark 4.3", provisioner=True))
    assert spec["argv"][0] == sys.executable and spec["display_name"] == "Spark 4.3"
    meta = spec["metadata"]["pyspark_kernel"]
    assert meta["spark_version"] == "4.3.0" and meta["java_version"] == "17.0.15" and meta["py4j_zip"].endswith(".zip")
    assert spec["metadata"]["kernel_provisioner"]["provisioner_name"] == "pyspark-provisioner"
    assert "kernel_provisioner" not in kernelspec.kernel_json(SPARK, SparkOptions())["metadata"]


@pytest.mark.parametrize(
    "master",
    [
        "local",
        "local[*]",
        "local[8]",
        "local[2,3]",
        "local-cluster[2,1,1024]",
        "yarn",
        "spark://h:7077",
        "spark://a:7077,b:7077",
        "k8s://https://10.0.0.1:6443",
    ],
)
def test_master_urls_accepted(master: str) -> None:
    options.check_options(SparkOptions(master=master))


@pytest.mark.parametrize("master", ["", "locl", "local[x]", "spark:/h", "http://h:7077", "yarn cluster"])
def test_master_urls_refused(master: str) -> None:
    with pytest.raises(KernelSpecError, match="not a Spark master URL"):
        options.check_options(SparkOptions(master=master))


def test_parse_conf() -> None:
    assert submitargs.parse_pairs(["a=1", "b=x=y", "c="], "--conf") == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(ConfPairError, match="--conf '=1' is not KEY=VALUE") as refused:
        submitargs.parse_pairs(["=1"], "--conf")
    assert refused.value.fix == "write it as --conf spark.sql.shuffle.partitions=8"


def test_redaction_masks_secret_names_only() -> None:
    spec = {
        "env": {
            "AWS_SECRET_ACCESS_KEY": "abcdefghijkl",
            "HOME_DIR": "/home/x",
            "PYSPARK_SUBMIT_ARGS": kernelspec.submit_args(SparkOptions(conf={"spark.ssl.keyPassword": "pw123456789", "spark.x": "y"})),
        }
    }
    shown = kernelspec.redacted(spec)
    assert shown["env"]["AWS_SECRET_ACCESS_KEY"] == "ab****" and shown["env"]["HOME_DIR"] == "/home/x"
    assert "pw123456789" not in shown["env"]["PYSPARK_SUBMIT_ARGS"] and "spark.x=y" in shown["env"]["PYSPARK_SUBMIT_ARGS"]
    assert spec["env"]["AWS_SECRET_ACCESS_KEY"] == "abcdefghijkl", "the original is untouched"


def test_with_conf_adds_before_pyspark_shell_so_it_wins() -> None:
    args = kernelspec.submit_args(SparkOptions(conf={"spark.ui.port": "4040"}))
    added = submitargs.with_conf(args, {"spark.ui.port": "4051", "spark.x": "a b"})
    assert shlex.split(added)[-5:] == ["--conf", "spark.ui.port=4051", "--conf", "spark.x=a b", "pyspark-shell"]
    assert submitargs.parse(added).conf["spark.ui.port"] == "4051"
    assert submitargs.with_conf(args, {}) == args


def test_kernel_json_declares_curve_transport_encryption() -> None:
    """jupyter_client provisions CurveZMQ keys (transport_encryption "auto") only for kernelspecs that
    declare it; ipykernel >= 7.3, which our kernel runs on, applies them (tests/cli/test_channels.py)."""
    for spec in (kernelspec.kernel_json(SPARK, SparkOptions()), kernelspec.kernel_json(SPARK, SparkOptions(provisioner=True))):
        assert spec["metadata"]["supported_encryption"] == ["curve"]
