"""The image's parts that need no Docker engine: hadolint, the entrypoint's roles, version agreement."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"


def test_hadolint_is_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(DOCKER / "Dockerfile")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def dry_run(tmp_path: Path, *args: str, **env: str) -> list[str]:
    """The command the entrypoint would exec for ``args`` (DRY_RUN prints it instead)."""
    environ = {"PATH": os.environ["PATH"], "HOME": "/home/jovyan", "SPARK_HOME": "/opt/spark", "DRY_RUN": "1",
               "PYSPARK_ROLE_FILE": str(tmp_path / "role"), **env}
    result = subprocess.run(["sh", str(DOCKER / "entrypoint.sh"), *args], capture_output=True, text=True, env=environ, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_notebook_is_the_default_role_with_token_auth(tmp_path: Path) -> None:
    lines = dry_run(tmp_path, JUPYTER_TOKEN="s3cret")
    command = lines[-1]
    assert command.startswith("jupyter lab --no-browser --ip=0.0.0.0 --port=8888")
    assert "--IdentityProvider.token=s3cret" in command and "--MappingKernelManager.default_kernel_name=pyspark_python3" in command
    assert "s3cret" not in "\n".join(lines[:-1]), "a token given by the user is not echoed"
    assert (tmp_path / "role").read_text().strip() == "notebook"


def test_notebook_generates_and_prints_a_token(tmp_path: Path) -> None:
    lines = dry_run(tmp_path, "notebook")
    token = lines[-1].split("--IdentityProvider.token=")[1].split()[0]
    assert len(token) >= 32 and f"token={token}" in lines[0]


def test_notebook_with_a_master_installs_a_cluster_kernelspec_first(tmp_path: Path) -> None:
    lines = dry_run(tmp_path, "notebook", SPARK_MASTER_URL="spark://master:7077", SPARK_DRIVER_HOST="notebook", JUPYTER_TOKEN="t")
    assert lines[0] == "pyspark-kernel install --user --replace --master spark://master:7077 --conf spark.driver.host=notebook --env SPARK_LOCAL_IP 0.0.0.0"


def test_master_worker_and_connect_roles(tmp_path: Path) -> None:
    assert dry_run(tmp_path, "master") == ["/opt/spark/bin/spark-class org.apache.spark.deploy.master.Master --host 0.0.0.0 --port 7077 --webui-port 8080"]
    assert dry_run(tmp_path, "worker", "spark://master:7077", SPARK_WORKER_CORES="1", SPARK_WORKER_MEMORY="1g") == [
        "/opt/spark/bin/spark-class org.apache.spark.deploy.worker.Worker --cores 1 --memory 1g --webui-port 8081 spark://master:7077"
    ]
    connect = dry_run(tmp_path, "connect-server")[0]
    assert connect.startswith("/opt/spark/bin/spark-submit --class org.apache.spark.sql.connect.service.SparkConnectServer")
    assert (tmp_path / "role").read_text().strip() == "connect-server"


def test_worker_without_a_master_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(["sh", str(DOCKER / "entrypoint.sh"), "worker"], capture_output=True, text=True,
                            env={"PATH": os.environ["PATH"], "DRY_RUN": "1", "PYSPARK_ROLE_FILE": str(tmp_path / "role")}, timeout=30)
    assert result.returncode == 2 and "worker needs the master's URL" in result.stderr


def test_other_commands_run_as_given(tmp_path: Path) -> None:
    assert dry_run(tmp_path, "bash", "-lc", "id") == ["bash -lc id"]


def test_environment_yml_agrees_with_the_package_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {Requirement(spec).name.lower(): Requirement(spec).specifier for spec in project["dependencies"]}
    environment = yaml.safe_load((DOCKER / "environment.yml").read_text())
    conda = {entry.split("=")[0]: entry.split("=", 1)[1] for entry in environment["dependencies"] if isinstance(entry, str) and "=" in entry}
    pip = {Requirement(spec).name.lower(): str(Requirement(spec).specifier).removeprefix("==") for entry in environment["dependencies"] if isinstance(entry, dict) for spec in entry["pip"]}
    assert pins["pyspark"].contains(pip["pyspark"]), (pins["pyspark"], pip["pyspark"])
    for name in ("pandas", "pyarrow"):
        assert pins[name].contains(conda[name] + ".0"), (name, pins[name], conda[name])
    python_floor = project["requires-python"].removeprefix(">=")
    assert tuple(map(int, conda["python"].split("."))) >= tuple(map(int, python_floor.split(".")))
    assert conda["openjdk"] in ("17", "21"), "Spark 4 runs on Java 17 or 21"
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert f"ARG GRAPHFRAMES_VERSION={pip['graphframes-py'].rsplit('.', 1)[0]}." in dockerfile


def test_dockerfile_runs_the_cli_not_a_copied_kernel_json() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "pyspark-kernel install --sys-prefix" in dockerfile and "kernel.json" not in dockerfile
    assert "USER ${NB_UID}" in dockerfile and "ARG NB_UID=1000" in dockerfile
