"""PYSPARK_SUBMIT_ARGS, pure logic: built, read back, extended, redacted; no JVM."""

from __future__ import annotations

import shlex

import pytest

from pyspark_kernel import submitargs
from pyspark_kernel.errors import ConfPairError


def test_built_args_read_back_the_same_with_quoting_that_survives_pysparks_shell_split() -> None:
    text = submitargs.build(
        "local[2]",
        {"--driver-memory": "2g", "--packages": None, "--jars": "/opt/my jars/a.jar"},
        {"spark.driver.extraJavaOptions": "-Dx=1 -Dy=2", "spark.app.name": "it's mine"},
    )
    words = shlex.split(text)
    assert words[-1] == "pyspark-shell" and "--packages" not in words
    read = submitargs.parse(text)
    assert read.master == "local[2]"
    assert read.flags == {"--driver-memory": "2g", "--jars": "/opt/my jars/a.jar"}
    assert read.conf == {"spark.driver.extraJavaOptions": "-Dx=1 -Dy=2", "spark.app.name": "it's mine"}


def test_a_later_conf_wins_as_on_spark_submits_command_line() -> None:
    text = submitargs.with_conf("--conf spark.ui.port=4040 pyspark-shell", {"spark.ui.port": "4051"})
    assert submitargs.parse(text).conf["spark.ui.port"] == "4051"
    assert shlex.split(text)[-1] == "pyspark-shell"
    assert submitargs.parse("--master yarn").master == "yarn" and submitargs.parse("").master == "local[*]"


def test_redact_masks_only_secret_keys() -> None:
    text = submitargs.build("local[*]", {}, {"spark.ssl.keyPassword": "hunter2-long", "spark.executor.memory": "2g"})
    shown = submitargs.redact(text, lambda key: "PASSWORD" in key.upper(), lambda value: "****")
    assert submitargs.parse(shown).conf == {"spark.ssl.keyPassword": "****", "spark.executor.memory": "2g"}


def test_driver_java_option_is_found_among_others() -> None:
    text = submitargs.build("local[*]", {}, {"spark.driver.extraJavaOptions": "-Xss4m -XX:SharedArchiveFile=/c/a.jsa -Xshare:auto"})
    assert submitargs.java_option(text, "-XX:SharedArchiveFile=") == "/c/a.jsa"
    assert submitargs.java_option("pyspark-shell", "-XX:SharedArchiveFile=") is None


@pytest.mark.parametrize("pair", ["spark.executor.memory", "=1", " =x"])
def test_a_pair_without_a_key_and_an_equals_sign_is_refused_with_the_fix(pair: str) -> None:
    with pytest.raises(ConfPairError) as refused:
        submitargs.parse_pairs([pair], "%spark conf")
    assert refused.value.problem == f"%spark conf {pair!r} is not KEY=VALUE."
    assert str(refused.value).endswith("\nFix: write it as %spark conf spark.sql.shuffle.partitions=8")
