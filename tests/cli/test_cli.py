"""The CLI as a user runs it: every subcommand, and every bad input (message, exit 2, nothing written)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli, install


def kernels_in(prefix: Path) -> list[str]:
    folder = prefix / "share" / "jupyter" / "kernels"
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def fake_spark(root: Path, *, jars: bool = True, py4j: bool = True) -> Path:
    """A folder shaped like a Spark (real files, empty jars) for the layout checks."""
    home = root / "spark"
    (home / "python" / "lib").mkdir(parents=True)
    if jars:
        (home / "jars").mkdir()
        (home / "jars" / "spark-core_2.13-4.3.0.jar").write_bytes(b"")
    if py4j:
        (home / "python" / "lib" / "py4j-0.10.9.9-src.zip").write_bytes(b"")
        (home / "python" / "lib" / "pyspark.zip").write_bytes(b"")
    return home


def assert_refused(result, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# -- install, list, show, remove, check ------------------------------------------------------------
def test_install_writes_kernel_json_for_pip_pyspark(tmp_path: Path) -> None:
    folder = install(
        tmp_path,
        "--name",
        "PySpark_Python3",
        "--master",
        "local[2]",
        "--conf",
        "spark.sql.shuffle.partitions=4",
        "--driver-memory",
        "1g",
        "--env",
        "MY_VAR",
        "x y",
        "--no-cds",
    )
    assert folder == tmp_path / "share" / "jupyter" / "kernels" / "pyspark_python3"
    spec = json.loads((folder / "kernel.json").read_text())
    import pyspark

    frozen = ["-Xfrozen_modules=off"] if sys.version_info >= (3, 11) else []  # the debugger needs them off
    assert spec["argv"] == [sys.executable, *frozen, "-m", "pyspark_kernel", "-f", "{connection_file}"]
    assert spec["display_name"] == "PySpark_Python3" and spec["language"] == "python" and spec["interrupt_mode"] == "signal"
    env = spec["env"]
    assert env["SPARK_HOME"] == str(Path(pyspark.__file__).parent)
    assert env["PYTHONPATH"].endswith("-src.zip") and Path(env["PYTHONPATH"]).is_file()
    assert env["PYSPARK_PYTHON"] == env["PYSPARK_DRIVER_PYTHON"] == sys.executable
    assert env["PYSPARK_SUBMIT_ARGS"] == "--master 'local[2]' --driver-memory 1g --conf spark.sql.shuffle.partitions=4 pyspark-shell"
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1" and env["MY_VAR"] == "x y"
    assert spec["metadata"]["pyspark_kernel"]["spark_version"] == pyspark.__version__
    assert sorted(path.name for path in folder.iterdir()) == ["kernel.json", "logo-32x32.png", "logo-64x64.png", "logo-svg.svg"]
    # Files 0644 and folders 0755, whatever the umask of the staging folder was.
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o644 for path in folder.iterdir())


def test_list_show_check_remove_round_trip(tmp_path: Path) -> None:
    install(tmp_path, "--name", "roundtrip", "--conf", "spark.hadoop.fs.s3a.secret.key=abcdefghijkl", "--env", "API_TOKEN", "supersecretvalue")
    listed = cli("list", "--prefix", str(tmp_path))
    assert listed.returncode == 0 and "roundtrip" in listed.stdout and "local[*]" in listed.stdout
    shown = cli("show", "roundtrip", "--prefix", str(tmp_path))
    assert shown.returncode == 0
    spec = json.loads(shown.stdout)
    # Secret values are kept in the 0600 file kernel.json names (test_secrets.py), shown by name only.
    assert "API_TOKEN" not in spec["env"] and "--properties-file" in spec["env"]["PYSPARK_SUBMIT_ARGS"]
    assert "abcdefghijkl" not in shown.stdout and "supersecretvalue" not in shown.stdout
    assert spec["metadata"]["pyspark_kernel"]["private_conf"] == ["pyspark.kernel.env.API_TOKEN", "spark.hadoop.fs.s3a.secret.key"]
    checked = cli("check", "roundtrip", "--prefix", str(tmp_path))
    assert checked.returncode == 0, checked.stdout
    for name in ("SPARK_HOME", "PYTHONPATH", "Java", "pyspark", "Python"):
        assert f"OK    {name}" in checked.stdout
    removed = cli("remove", "roundtrip", "--prefix", str(tmp_path))
    assert removed.returncode == 0 and kernels_in(tmp_path) == []


def test_check_without_name_checks_the_default_environment() -> None:
    result = cli("check")
    assert result.returncode == 0, result.stdout
    assert "OK    Java" in result.stdout and "OK    pyspark" in result.stdout


def test_check_reports_a_fail_with_its_fix(tmp_path: Path) -> None:
    folder = install(tmp_path, "--name", "broken")
    spec = json.loads((folder / "kernel.json").read_text())
    spec["env"]["SPARK_HOME"] = str(tmp_path / "gone")
    (folder / "kernel.json").write_text(json.dumps(spec))
    result = cli("check", "broken", "--prefix", str(tmp_path))
    assert result.returncode == 1
    assert "FAIL  SPARK_HOME" in result.stdout and "fix: pass --spark-home with the folder of a Spark install" in result.stdout, result.stdout
    assert "Fix:" not in result.stdout, "the fix is a field of its own, not a second 'Fix:' inside it"


def test_python_module_entry_point_is_the_cli() -> None:
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("pyspark-kernel ")


def test_install_replace_overwrites(tmp_path: Path) -> None:
    install(tmp_path, "--name", "again")
    folder = install(tmp_path, "--name", "again", "--master", "local[1]", "--replace")
    assert "'local[1]'" in json.loads((folder / "kernel.json").read_text())["env"]["PYSPARK_SUBMIT_ARGS"]


def test_install_start_mode_and_py_files(tmp_path: Path) -> None:
    extra = tmp_path / "helpers.zip"
    extra.write_bytes(b"")
    folder = install(tmp_path, "--name", "lazy", "--start", "lazy", "--py-files", str(extra), "--packages", "a:b:1", "--jars", "/x.jar")
    env = json.loads((folder / "kernel.json").read_text())["env"]
    assert env["PYSPARK_KERNEL_START"] == "lazy"
    assert env["PYTHONPATH"].split(os.pathsep)[-1] == str(extra)
    assert f"--packages a:b:1 --jars /x.jar --py-files {extra}" in env["PYSPARK_SUBMIT_ARGS"]


# -- bad inputs: one clear message, exit 2, nothing written ------------------------------------------
@pytest.mark.parametrize(
    "args, needles",
    [
        (["--name", "bad name!"], ["not a valid kernel name"]),
        (["--name", "../x"], ["not a valid kernel name"]),
        (["--name", "a/b"], ["not a valid kernel name"]),
        (["--conf", "spark.executor.memory"], ["is not KEY=VALUE", "Fix:"]),
        (["--start", "sometimes"], ["--start 'sometimes' is unknown", "eager, lazy, none"]),
        (["--master", "locl[2]"], ["is not a Spark master URL", "Fix:"]),
        (["--master", "spark//host:7077"], ["is not a Spark master URL"]),
        (["--remote", "http://host:15002"], ["is neither a Spark Connect URL nor a local server"]),
        (["--remote", "local[x]"], ["is neither a Spark Connect URL nor a local server", "local[*] / local[N]"]),
        (["--server-idle-timeout", "60"], ["--server-idle-timeout applies to a shared local server only", "Fix:"]),
        (["--remote", "sc://h:1", "--server-idle-timeout", "60"], ["--server-idle-timeout applies to a shared local server only"]),
        (["--remote", "local[*]", "--server-idle-timeout", "-5"], ["--server-idle-timeout -5 is not a positive number", "Fix:"]),
        (["--remote", "local[*]", "--master", "local[2]"], ["both say where Spark runs", "Fix:"]),
        (["--env", "PYSPARK_KERNEL_PROGRESS", "sideways"], ["--env PYSPARK_KERNEL_PROGRESS 'sideways' is unknown", "full, bar, off"]),
        (["--spark-home", "/nonexistent/spark"], ["/nonexistent/spark does not exist", "Fix:"]),
        (["--python", "/nonexistent/python3"], ["is not an executable file", "Fix:"]),
        (["--pool", "17"], ["--pool 17 is out of range", "use 1 to 16"]),
        (["--pool", "-1"], ["--pool -1 is out of range"]),
        (["--pool", "two"], ["argument --pool: invalid int value"]),
        (["--pool-idle-timeout", "60"], ["--pool-idle-timeout needs --pool N", "Fix:"]),
        (["--pool", "2", "--pool-idle-timeout", "0"], ["--pool-idle-timeout 0 is not a positive number", "Fix:"]),
    ],
)
def test_bad_input_is_refused_and_nothing_written(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    assert_refused(cli("install", "--prefix", str(tmp_path), *args), *needles)
    assert kernels_in(tmp_path) == []


def test_spark_home_without_jars_is_not_a_spark(tmp_path: Path) -> None:
    home = fake_spark(tmp_path, jars=False)
    assert_refused(cli("install", "--prefix", str(tmp_path / "p"), "--spark-home", str(home)), "is not a Spark: it has no jars/", "Fix:")
    assert kernels_in(tmp_path / "p") == []


def test_spark_home_without_py4j_zip(tmp_path: Path) -> None:
    home = fake_spark(tmp_path, py4j=False)
    assert_refused(cli("install", "--prefix", str(tmp_path / "p"), "--spark-home", str(home)), "No py4j zip", "Fix:")
    assert kernels_in(tmp_path / "p") == []


def test_python_that_is_not_executable(tmp_path: Path) -> None:
    not_python = tmp_path / "python"
    not_python.write_text("")
    assert_refused(cli("install", "--prefix", str(tmp_path / "p"), "--python", str(not_python)), "is not an executable file")
    assert kernels_in(tmp_path / "p") == []


def test_python_without_this_package(tmp_path: Path) -> None:
    """A real interpreter that lacks pyspark_kernel cannot run the kernel: say how to install it. The
    interpreter is a fresh venv of this Python's, so the test runs on every machine."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True, capture_output=True, timeout=120)
    bare_python = str(tmp_path / "bare" / "bin" / "python")
    lacks = subprocess.run([bare_python, "-c", "import pyspark_kernel"], capture_output=True, text=True, cwd="/", timeout=60)
    assert "No module named 'pyspark_kernel'" in lacks.stderr, f"the fresh venv imports pyspark_kernel: {lacks}"
    assert_refused(
        cli("install", "--prefix", str(tmp_path / "p"), "--python", bare_python), "cannot import pyspark_kernel", "pip install pyspark-jupyter-kernel"
    )


def test_existing_kernelspec_needs_replace(tmp_path: Path) -> None:
    folder = install(tmp_path, "--name", "taken")
    before = (folder / "kernel.json").read_text()
    assert_refused(cli("install", "--prefix", str(tmp_path), "--name", "taken", "--master", "local[1]"), "already exists", "--replace")
    assert (folder / "kernel.json").read_text() == before


@pytest.mark.parametrize(
    "option, value, needle",
    [("--spark-home", "/nonexistent/spark", "SPARK_HOME /nonexistent/spark does not exist"), ("--python", "/nonexistent/python3", "is not an executable file")],
)
def test_a_bad_path_is_told_before_a_name_clash(tmp_path: Path, option: str, value: str, needle: str) -> None:
    """The cheap inputs first: a wrong path is what to fix, whatever the destination holds (--replace would not help)."""
    folder = install(tmp_path, "--name", "taken", "--no-cds")
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    result = cli("install", "--prefix", str(tmp_path), "--name", "taken", option, value)
    assert_refused(result, needle, value, "Fix:")
    assert "already exists" not in result.stderr, result.stderr
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert kernels_in(tmp_path) == ["taken"]


def test_unwritable_prefix(tmp_path: Path) -> None:
    """Root can write anywhere, so the unwritable prefix is one below a regular file."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_refused(cli("install", "--prefix", str(blocker / "prefix")), "Cannot write the kernelspec", "Fix:")
    assert blocker.read_text() == ""


def test_user_and_prefix_together(tmp_path: Path) -> None:
    assert_refused(cli("install", "--user", "--prefix", str(tmp_path)), "not allowed with argument")
    assert kernels_in(tmp_path) == []


def test_java_missing_at_install(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path / "empty-bin")}
    env.pop("JAVA_HOME", None)
    assert_refused(cli("install", "--prefix", str(tmp_path), env=env), "Java not found", "default-jre-headless")
    assert kernels_in(tmp_path) == []


@pytest.mark.parametrize("command", ["show", "remove", "check"])
def test_unknown_kernel_name(tmp_path: Path, command: str) -> None:
    assert_refused(cli(command, "no-such-kernel", "--prefix", str(tmp_path)), "No kernelspec named 'no-such-kernel'")


def test_remove_refuses_kernelspecs_that_are_not_ours(tmp_path: Path) -> None:
    other = tmp_path / "share" / "jupyter" / "kernels" / "other"
    other.mkdir(parents=True)
    (other / "kernel.json").write_text(
        json.dumps({"argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Other", "language": "python"})
    )
    assert_refused(cli("remove", "other", "--prefix", str(tmp_path)), "was not written by pyspark-kernel")
    assert (other / "kernel.json").exists()


@pytest.mark.parametrize("prefer_env", ["0", "1"])
def test_default_location_follows_jupyter_cores_rule_and_remove_finds_it(prefer_env: str, tmp_path: Path) -> None:
    """jupyter_core's prefer_environment_over_user() decides, as for every Jupyter install: inside a venv
    or conda env (conda's base too, where sys.prefix == sys.base_prefix) the env, else the user;
    JUPYTER_PREFER_ENV_PATH, which it reads first, stands for the two cases here."""
    env = {**os.environ, "JUPYTER_PREFER_ENV_PATH": prefer_env, "JUPYTER_DATA_DIR": str(tmp_path / "user-data")}
    name = f"where-{prefer_env}"
    result = cli("install", "--name", name, "--no-cds", env=env)
    assert result.returncode == 0, result.stderr
    installed = Path(result.stdout.splitlines()[0].rsplit(" in ", 1)[1])
    try:
        if prefer_env == "0":
            assert installed == tmp_path / "user-data" / "kernels" / name
        else:
            assert installed == Path(sys.prefix) / "share" / "jupyter" / "kernels" / name
    finally:
        removed = cli("remove", name, env=env)
    assert removed.returncode == 0, removed.stderr
    assert not installed.exists()


def test_pool_goes_to_the_provisioners_config_and_check_reports_it(tmp_path: Path) -> None:
    folder = install(tmp_path, "--name", "pooled", "--pool", "2", "--pool-idle-timeout", "600", "--no-cds")
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["metadata"]["kernel_provisioner"] == {"provisioner_name": "pyspark-provisioner", "config": {"pool_size": 2, "pool_idle_timeout": 600.0}}
    report = cli("check", "pooled", "--prefix", str(tmp_path))
    assert "warm pool of 2 (idle timeout 600 s)" in report.stdout, report.stdout


# -- Spark's Java rule at install and check, with real Javas of this machine ------------------------
def java_home(feature: int) -> Path:
    """A real JAVA_HOME of this feature release under /usr/lib/jvm, or skip saying there is none."""
    from pyspark_kernel.environment import installed_javas

    for found in installed_javas():
        if found.version == feature:
            return found.executable.parent.parent
    pytest.skip(f"no Java {feature} under /usr/lib/jvm on this machine")


@pytest.mark.slow  # a second Spark (3.5.9, cached under .cache/)
def test_install_refuses_spark_35_on_java_25_however_the_java_is_given(tmp_path: Path, spark_359_home: Path) -> None:
    jdk25 = java_home(25)
    given = ["install", "--prefix", str(tmp_path), "--spark-home", str(spark_359_home), "--no-cds"]
    needles = ["Spark 3.5.9 does not run on Java 25", "Spark 3.5 supports Java 8, 11 and 17", "Fix: use Java 17:", "--env JAVA_HOME"]
    assert_refused(cli(*given, "--env", "JAVA_HOME", str(jdk25)), *needles)  # the kernelspec's own Java
    assert_refused(cli(*given, env={**os.environ, "JAVA_HOME": str(jdk25)}), *needles)  # the installer's
    assert kernels_in(tmp_path) == []


@pytest.mark.slow
def test_install_checks_the_java_of_env_java_home_and_check_fails_it_later(tmp_path: Path, spark_359_home: Path) -> None:
    """--env JAVA_HOME wins over the installer's JAVA_HOME, at install and in check; a kernelspec whose
    JAVA_HOME is later pointed at a Java its Spark does not support gets a FAIL row with the fix."""
    jdk17, jdk25 = java_home(17), java_home(25)
    installer = {**os.environ, "JAVA_HOME": str(jdk25)}  # would be refused for 3.5.9: --env must win
    result = cli(
        "install", "--prefix", str(tmp_path), "--name", "j17", "--spark-home", str(spark_359_home), "--no-cds", "--env", "JAVA_HOME", str(jdk17), env=installer
    )
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "share" / "jupyter" / "kernels" / "j17"
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["env"]["JAVA_HOME"] == str(jdk17) and spec["metadata"]["pyspark_kernel"]["java_version"].startswith("17.")
    checked = cli("check", "j17", "--prefix", str(tmp_path), env=installer)
    assert checked.returncode == 0 and re.search(r"^OK +Java +Java 17\.", checked.stdout, re.M), checked.stdout
    spec["env"]["JAVA_HOME"] = str(jdk25)
    (folder / "kernel.json").write_text(json.dumps(spec))
    checked = cli("check", "j17", "--prefix", str(tmp_path))
    assert checked.returncode == 1, checked.stdout
    assert re.search(r"^FAIL +Java +Spark 3\.5\.9 does not run on Java 25", checked.stdout, re.M), checked.stdout
    assert "fix: use Java 17: set JAVA_HOME to it" in checked.stdout and f"this machine has {jdk17}" in checked.stdout, checked.stdout


@pytest.mark.slow
def test_a_shared_local_server_needs_spark_4_3(tmp_path: Path, spark_359_home: Path) -> None:
    result = cli("install", "--prefix", str(tmp_path), "--remote", "local[*]", "--spark-home", str(spark_359_home), "--no-cds")
    assert_refused(result, "--remote local[*] needs Spark 4.3 or later", "Spark 3.5.9", "Fix:")
    assert kernels_in(tmp_path) == []


def test_shared_local_server_kernelspec_uses_sparks_own_variables(tmp_path: Path) -> None:
    result = cli("install", "--prefix", str(tmp_path), "--remote", "local[2]", "--driver-memory", "2g", "--conf", "spark.sql.shuffle.partitions=8", "--no-cds")
    import pyspark

    if tuple(int(part) for part in pyspark.__version__.split(".")[:2]) < (4, 3):  # make test-lowest's pyspark
        assert_refused(result, "--remote local[*] needs Spark 4.3 or later", f"Spark {pyspark.__version__}", "Fix:")
        assert kernels_in(tmp_path) == []
        return
    assert result.returncode == 0, result.stderr
    env = json.loads((tmp_path / "share" / "jupyter" / "kernels" / kernels_in(tmp_path)[0] / "kernel.json").read_text())["env"]
    assert env["SPARK_REMOTE"] == "local[2]" and env["SPARK_LOCAL_CONNECT_REUSE"] == "1" and env["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert env["PYSPARK_SUBMIT_ARGS"].startswith("--master 'local[2]' --driver-memory 2g") and "spark.sql.shuffle.partitions=8" in env["PYSPARK_SUBMIT_ARGS"]
    assert env["PYSPARK_KERNEL_SERVER_IDLE_TIMEOUT"] == "300"


def test_server_command_refuses_an_unknown_action() -> None:
    result = cli("server", "restart")
    assert result.returncode == 2 and "invalid choice: 'restart'" in result.stderr and "status" in result.stderr, result.stderr
