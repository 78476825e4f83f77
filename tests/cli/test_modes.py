"""Kernelspecs for YARN, Kubernetes and GraphFrames: the config install writes, and what check finds offline.

No YARN, Kubernetes or Maven Central is reachable here, so these test the generated kernel.json and the
offline checks; a GraphFrame runs live only when GRAPHFRAMES_JAR points at the jar.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest
from conftest import KernelHarness, cli, install

from cli.test_kernelspec import SPARK as SPARK_4  # a Spark 4.3 on Java 17, as install resolves one
from pyspark_kernel import submitargs
from pyspark_kernel.cli import kernelspec, options
from pyspark_kernel.cli.options import SparkOptions
from pyspark_kernel.environment import SparkEnvironment
from pyspark_kernel.errors import KernelSpecError

SPARK_35 = SparkEnvironment(**{**SPARK_4.__dict__, "spark_version": "3.5.9", "scala_version": "2.12"})
K8S = "k8s://https://10.0.0.1:6443"
NO_JAR_REASON = "Maven Central is not reachable from this machine; set GRAPHFRAMES_JAR=/path/to/graphframes-spark4_2.13-<ver>.jar to run it"


def written(folder: Path) -> dict:
    return json.loads((folder / "kernel.json").read_text())


def submitted_conf(env: dict[str, str]) -> dict[str, str]:
    return submitargs.parse(env["PYSPARK_SUBMIT_ARGS"]).conf


def hadoop_conf(tmp_path: Path, *, yarn_site: bool = True) -> Path:
    folder = tmp_path / "hadoop-conf"
    folder.mkdir()
    if yarn_site:
        (folder / "yarn-site.xml").write_text("<configuration/>\n")
    return folder


def without_hadoop_conf() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in options.HADOOP_CONF_VARS}


# -- YARN ------------------------------------------------------------------------------------------
def test_yarn_defaults_to_one_app_attempt_and_user_conf_wins() -> None:
    assert options.cluster_conf(SparkOptions(master="yarn")) == {"spark.yarn.maxAppAttempts": "1"}
    assert options.cluster_conf(SparkOptions(master="yarn", conf={"spark.yarn.maxAppAttempts": "2"})) == {"spark.yarn.maxAppAttempts": "2"}
    assert options.cluster_conf(SparkOptions(master="local[*]")) == {}


def test_yarn_carries_hadoop_conf_dirs_from_the_installer() -> None:
    installer = {"HADOOP_CONF_DIR": "/etc/hadoop/conf", "YARN_CONF_DIR": "/etc/yarn/conf", "JAVA_HOME": "/jdk"}
    env = kernelspec.kernel_env(SPARK_4, SparkOptions(master="yarn"), installer)
    assert env["HADOOP_CONF_DIR"] == "/etc/hadoop/conf" and env["YARN_CONF_DIR"] == "/etc/yarn/conf"
    assert "SPARK_LOCAL_IP" not in env, "a YARN driver must be reachable from the cluster"
    assert "HADOOP_CONF_DIR" not in kernelspec.kernel_env(SPARK_4, SparkOptions(), installer), "only YARN kernels carry it"


def test_install_yarn_writes_client_mode_settings(tmp_path: Path) -> None:
    conf_dir = hadoop_conf(tmp_path)
    result = cli(
        "install",
        "--prefix",
        str(tmp_path),
        "--name",
        "yarn",
        "--master",
        "yarn",
        "--conf",
        "spark.executor.instances=2",
        "--no-cds",
        env={**without_hadoop_conf(), "HADOOP_CONF_DIR": str(conf_dir)},
    )
    assert result.returncode == 0, result.stderr
    env = written(tmp_path / "share" / "jupyter" / "kernels" / "yarn")["env"]
    assert env["HADOOP_CONF_DIR"] == str(conf_dir)
    assert shlex.split(env["PYSPARK_SUBMIT_ARGS"]) == [
        "--master",
        "yarn",
        "--conf",
        "spark.yarn.maxAppAttempts=1",
        "--conf",
        "spark.executor.instances=2",
        "pyspark-shell",
    ]
    checked = cli("check", "yarn", "--prefix", str(tmp_path), env=without_hadoop_conf())
    assert "OK    YARN" in checked.stdout and str(conf_dir) in checked.stdout, checked.stdout


def test_install_yarn_without_hadoop_conf_is_refused(tmp_path: Path) -> None:
    result = cli("install", "--prefix", str(tmp_path), "--master", "yarn", env=without_hadoop_conf())
    assert result.returncode == 2 and "neither HADOOP_CONF_DIR nor YARN_CONF_DIR is set" in result.stderr
    assert "Fix: export HADOOP_CONF_DIR" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "share").exists()


def test_install_yarn_with_env_hadoop_conf(tmp_path: Path) -> None:
    folder = install(tmp_path, "--name", "yarn-env", "--master", "yarn", "--env", "HADOOP_CONF_DIR", "/etc/hadoop/conf")
    assert written(folder)["env"]["HADOOP_CONF_DIR"] == "/etc/hadoop/conf"


def test_check_yarn_without_yarn_site(tmp_path: Path) -> None:
    conf_dir = hadoop_conf(tmp_path, yarn_site=False)
    install(tmp_path, "--name", "yarn-bare", "--master", "yarn", "--env", "HADOOP_CONF_DIR", str(conf_dir))
    checked = cli("check", "yarn-bare", "--prefix", str(tmp_path), env=without_hadoop_conf())
    assert checked.returncode == 1 and "FAIL  YARN" in checked.stdout and "no yarn-site.xml" in checked.stdout, checked.stdout


# -- Kubernetes ------------------------------------------------------------------------------------
def test_k8s_image_and_namespace_become_spark_conf() -> None:
    requested = SparkOptions(
        master=K8S, k8s_image="reg/spark-py:4.3.0", k8s_namespace="notebooks", conf={"spark.kubernetes.authenticate.driver.serviceAccountName": "spark"}
    )
    assert options.cluster_conf(requested) == {
        "spark.kubernetes.container.image": "reg/spark-py:4.3.0",
        "spark.kubernetes.namespace": "notebooks",
        "spark.kubernetes.authenticate.driver.serviceAccountName": "spark",
    }
    assert options.cluster_conf(SparkOptions(master=K8S, k8s_image="i")) == {"spark.kubernetes.container.image": "i"}, "only what was asked"


def test_install_k8s(tmp_path: Path) -> None:
    folder = install(tmp_path, "--name", "k8s", "--master", K8S, "--k8s-image", "reg/spark-py:4.3.0", "--k8s-namespace", "notebooks")
    env = written(folder)["env"]
    conf = submitted_conf(env)
    assert conf["spark.kubernetes.container.image"] == "reg/spark-py:4.3.0" and conf["spark.kubernetes.namespace"] == "notebooks"
    assert "SPARK_LOCAL_IP" not in env
    checked = cli("check", "k8s", "--prefix", str(tmp_path))
    assert "OK    Kubernetes API" in checked.stdout and "OK    k8s image" in checked.stdout, checked.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--master", K8S], "needs the container image"),
        (["--master", "k8s://https://api.example:port", "--k8s-image", "i"], "port is not a number"),
        (["--master", "k8s://ftp://api.example:6443", "--k8s-image", "i"], "neither https nor http"),
        (["--k8s-image", "i"], "apply to Kubernetes only"),
        (["--remote", "sc://127.0.0.1:15002", "--graphframes"], "has none"),
    ],
)
def test_bad_cluster_options_are_refused(tmp_path: Path, args: list[str], needle: str) -> None:
    result = cli("install", "--prefix", str(tmp_path), *args)
    assert result.returncode == 2 and needle in result.stderr and "Fix:" in result.stderr, result.stderr
    assert not (tmp_path / "share").exists()


def test_check_k8s_flags_a_kernelspec_without_image(tmp_path: Path) -> None:
    folder = install(tmp_path, "--name", "k8s-edited", "--master", K8S, "--k8s-image", "reg/spark-py:4.3.0")
    spec = written(folder)
    spec["env"]["PYSPARK_SUBMIT_ARGS"] = f"--master {K8S} pyspark-shell"  # as if edited by hand
    (folder / "kernel.json").write_text(json.dumps(spec))
    checked = cli("check", "k8s-edited", "--prefix", str(tmp_path))
    assert checked.returncode == 1 and "FAIL  k8s image" in checked.stdout and "--k8s-image" in checked.stdout, checked.stdout


def test_k8s_url_problems() -> None:
    assert options.k8s_url_problem(K8S) is None
    assert options.k8s_url_problem("k8s://10.0.0.1:6443") is None, "Spark reads a bare host as https"
    assert options.k8s_url_problem("k8s://https://:6443") == "the API server host is missing"


# -- GraphFrames -----------------------------------------------------------------------------------
def test_graphframes_coordinate_follows_spark_and_scala() -> None:
    assert options.graphframes_coordinate("4.3.0", "2.13", "0.12.1") == "io.graphframes:graphframes-spark4_2.13:0.12.1"
    assert options.graphframes_coordinate("3.5.9", "2.12", "0.12.1") == "io.graphframes:graphframes-spark3_2.12:0.12.1"
    with pytest.raises(KernelSpecError, match=r"Spark 3\.5 and 4\.x"):
        options.graphframes_coordinate("3.4.4", "2.12", "0.12.1")


def test_graphframes_package_joins_other_packages() -> None:
    env = kernelspec.kernel_env(SPARK_35, SparkOptions(graphframes="0.12.1", packages="a:b:1"))
    args = shlex.split(env["PYSPARK_SUBMIT_ARGS"])
    assert args[args.index("--packages") + 1] == "a:b:1,io.graphframes:graphframes-spark3_2.12:0.12.1"


def test_install_graphframes_default_version(tmp_path: Path) -> None:
    import pyspark

    result = cli("install", "--prefix", str(tmp_path), "--name", "gf", "--graphframes")
    assert result.returncode == 0, result.stderr
    spec = written(tmp_path / "share" / "jupyter" / "kernels" / "gf")
    major = pyspark.__version__.split(".")[0]
    coordinate = f"io.graphframes:graphframes-spark{major}_2.13:{options.DEFAULT_GRAPHFRAMES_VERSION}"
    assert f"--packages {coordinate}" in spec["env"]["PYSPARK_SUBMIT_ARGS"]
    assert spec["metadata"]["pyspark_kernel"]["graphframes"] == {"version": options.DEFAULT_GRAPHFRAMES_VERSION, "jar": None, "package": coordinate}
    checked = cli("check", "gf", "--prefix", str(tmp_path))
    assert "WARN  GraphFrames jar" in checked.stdout and "Maven Central" in checked.stdout, checked.stdout


def test_install_graphframes_with_offline_jar(tmp_path: Path) -> None:
    jar = tmp_path / "graphframes-spark4_2.13-0.12.1.jar"
    jar.write_bytes(b"")
    folder = install(tmp_path, "--name", "gf-jar", "--graphframes", "0.12.1", "--jars", str(jar))
    env = written(folder)["env"]
    args = shlex.split(env["PYSPARK_SUBMIT_ARGS"])
    assert "--packages" not in args, "an offline jar needs no Maven Central"
    assert args[args.index("--jars") + 1] == str(jar) and args[args.index("--py-files") + 1] == str(jar)
    assert env["PYTHONPATH"].split(os.pathsep)[-1] == str(jar)
    checked = cli("check", "gf-jar", "--prefix", str(tmp_path))
    assert f"OK    GraphFrames jar  {jar}" in checked.stdout, checked.stdout
    jar.unlink()
    checked = cli("check", "gf-jar", "--prefix", str(tmp_path))
    assert checked.returncode == 1 and "FAIL  GraphFrames jar" in checked.stdout, checked.stdout


@pytest.mark.slow
def test_graphframe_in_degrees_live(prefix: Path) -> None:
    jar = os.environ.get("GRAPHFRAMES_JAR")
    if not jar or not Path(jar).is_file():
        pytest.skip(NO_JAR_REASON)
    folder = install(prefix, "--name", "graphframes-live", "--graphframes", "--jars", jar, "--master", "local[2]", "--replace")
    kernel = KernelHarness(folder.name)
    try:
        kernel.run(
            "from graphframes import GraphFrame\n"
            "v = spark.createDataFrame([('a',), ('b',), ('c',)], ['id'])\n"
            "e = spark.createDataFrame([('a', 'b'), ('b', 'c'), ('c', 'b')], ['src', 'dst'])\n"
            "g = GraphFrame(v, e)"
        )
        assert kernel.value("sorted((r.id, r.inDegree) for r in g.inDegrees.collect())") == "[('b', 2), ('c', 1)]"
    finally:
        kernel.shutdown()
