"""Secrets: one rule for which settings hold them, and where their values may go (secrets.py).

A secret value is never in a file another local account can read, nor on any process's command line
(``ps -eo args`` shows every account's). The quick tests check the rule, the files and the arguments;
the slow ones install real kernelspecs, start real kernels (a local JVM, a Spark Connect server with
token auth) and look from a second local account (conftest's ``second_account``), as a neighbour would.
"""

from __future__ import annotations

import json
import os
import secrets as random_secrets
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli.test_kernelspec import SPARK
from conftest import (
    SYSTEM_PYTHON,
    KernelHarness,
    as_second_account,
    cli,
    running_connect_server,
)

from pyspark_kernel import secrets, submitargs
from pyspark_kernel.cli import kernelspec
from pyspark_kernel.cli.options import SparkOptions
from pyspark_kernel.kernel import settings

SECRET_KEYS = [
    "spark.authenticate.secret",
    "spark.ssl.keyPassword",
    "spark.ssl.trustStorePassword",
    "javax.jdo.option.ConnectionPassword",
    "spark.hadoop.fs.s3a.access.key",
    "spark.hadoop.fs.s3a.secret.key",
    "spark.hadoop.fs.s3a.session.token",
    "spark.hadoop.fs.s3a.bucket.b1.secret.key",
    "spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net",
    "spark.redis.auth.password",
    "spark.my.secretName",
    "spark.api.token",
    "AWS_SECRET_ACCESS_KEY",
    "token",
]
PLAIN_KEYS = ["spark.executor.memory", "spark.sql.shuffle.partitions", "spark.master", "spark.app.name", "spark.ui.port", "spark.authenticate", "use_ssl"]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_keys_that_name_a_secret_are_secret(key: str) -> None:
    assert secrets.is_secret(key) and kernelspec.is_secret(key)


@pytest.mark.parametrize("key", PLAIN_KEYS)
def test_ordinary_keys_are_not(key: str) -> None:
    assert not secrets.is_secret(key)


def test_kernel_json_names_the_secret_file_and_holds_no_secret_value() -> None:
    options = SparkOptions(conf={"spark.hadoop.fs.s3a.secret.key": "s3-value-123", "spark.authenticate.secret": "auth-value-456", "spark.x": "1"})
    private = kernelspec.private_values(options)
    assert private == {"spark.hadoop.fs.s3a.secret.key": "s3-value-123", "spark.authenticate.secret": "auth-value-456"}
    spec = kernelspec.kernel_json(SPARK, options, private_file=Path("/home/u/.local/share/jupyter/pyspark-kernel/secrets/x.properties"))
    text = json.dumps(spec)
    assert "s3-value-123" not in text and "auth-value-456" not in text
    words = shlex.split(spec["env"]["PYSPARK_SUBMIT_ARGS"])
    assert words[words.index("--properties-file") + 1].endswith("x.properties") and "--load-spark-defaults" in words
    assert "spark.x=1" in words and words[-1] == "pyspark-shell"
    assert spec["env"][secrets.PRIVATE_FILE_VAR].endswith("x.properties")
    assert spec["metadata"]["pyspark_kernel"]["private_conf"] == ["spark.authenticate.secret", "spark.hadoop.fs.s3a.secret.key"]


def test_spark_3_gets_no_load_defaults_switch_it_would_refuse() -> None:
    words = shlex.split(kernelspec.submit_args(SparkOptions(conf={"spark.a.password": "pw"}), Path("/f.properties"), "3.5.9"))
    assert words[words.index("--properties-file") + 1] == "/f.properties" and "--load-spark-defaults" not in words


def test_a_secret_env_variable_goes_to_the_file_too() -> None:
    options = SparkOptions(env={"AWS_SECRET_ACCESS_KEY": "env-value-1", "HADOOP_USER_NAME": "me"})
    assert kernelspec.private_values(options) == {"pyspark.kernel.env.AWS_SECRET_ACCESS_KEY": "env-value-1"}
    env = kernelspec.kernel_json(SPARK, options, private_file=Path("/p/x.properties"))["env"]
    assert "AWS_SECRET_ACCESS_KEY" not in env and env["HADOOP_USER_NAME"] == "me"


def test_the_kernel_process_sets_the_secret_env_variables_itself(tmp_path: Path) -> None:
    path = tmp_path / "x.properties"
    secrets.write_private(path, {"pyspark.kernel.env.AWS_SECRET_ACCESS_KEY": "env-value-1", "spark.a.password": "p"})
    environ = {secrets.PRIVATE_FILE_VAR: str(path)}
    assert secrets.load_private_env(environ) is None and environ["AWS_SECRET_ACCESS_KEY"] == "env-value-1" and "spark.a.password" not in environ
    missing = {secrets.PRIVATE_FILE_VAR: str(tmp_path / "gone.properties")}
    assert "cannot read" in (secrets.load_private_env(missing) or "")


def test_no_secret_no_file_and_submit_args_as_before() -> None:
    options = SparkOptions(conf={"spark.x": "1"})
    assert kernelspec.private_values(options) == {}
    assert "--properties-file" not in kernelspec.kernel_json(SPARK, options)["env"]["PYSPARK_SUBMIT_ARGS"]


def test_switches_do_not_swallow_the_next_flag() -> None:
    parsed = submitargs.parse("--master local[2] --properties-file /f --load-spark-defaults --conf a=b pyspark-shell")
    assert parsed.conf == {"a": "b"} and parsed.flags["--properties-file"] == "/f" and parsed.flags["--load-spark-defaults"] == ""


@pytest.mark.parametrize(
    "url, public, hidden",
    [
        ("sc://h:15002/;token=abc;use_ssl=true", "sc://h:15002/;use_ssl=true", {"token": "abc"}),
        ("sc://h:15002/;token=abc", "sc://h:15002", {"token": "abc"}),
        ("sc://h:15002", "sc://h:15002", {}),
        ("sc://h/;user_id=me;session_id=x", "sc://h/;user_id=me;session_id=x", {}),
    ],
)
def test_a_connect_urls_token_is_split_off_and_put_back(url: str, public: str, hidden: dict[str, str]) -> None:
    assert secrets.split_remote(url) == (public, hidden)
    rebuilt = secrets.join_remote(public, hidden)
    assert secrets.split_remote(rebuilt) == (public, hidden)
    assert "abc" not in secrets.redact_remote(url)


def test_connect_install_keeps_the_token_out_of_kernel_json() -> None:
    options = SparkOptions(remote="sc://h:15002/;token=tok-value-789;use_ssl=true")
    assert kernelspec.private_values(options) == {"pyspark.kernel.remote.token": "tok-value-789"}
    spec = kernelspec.kernel_json(SPARK, options, private_file=Path("/p/x.properties"))
    assert "tok-value-789" not in json.dumps(spec)
    assert spec["env"]["SPARK_REMOTE"] == "sc://h:15002/;use_ssl=true" == spec["metadata"]["pyspark_kernel"]["master"]


def test_show_masks_kernelspecs_written_before_secret_files() -> None:
    spec = {
        "env": {
            "SPARK_REMOTE": "sc://h:1/;token=tok-value-789",
            secrets.PRIVATE_FILE_VAR: "/p/x.properties",
            "PYSPARK_SUBMIT_ARGS": "--conf spark.hadoop.fs.s3a.access.key=AKIAEXAMPLE123 pyspark-shell",
        },
        "metadata": {"pyspark_kernel": {"master": "sc://h:1/;token=tok-value-789"}},
    }
    shown = json.dumps(kernelspec.redacted(spec))
    assert "tok-value-789" not in shown and "AKIAEXAMPLE123" not in shown and "/p/x.properties" in shown


@pytest.mark.parametrize(
    "values",
    [
        {"spark.hadoop.fs.s3a.secret.key": "a=b:c#d!e\\f g"},
        {"odd key=with:stuff": "x", "spark.x.password": "üñí\ttab"},
    ],
)
def test_the_private_file_is_0600_in_a_0700_folder_and_reads_back(tmp_path: Path, values: dict[str, str]) -> None:
    path = tmp_path / "store" / "k.properties"
    secrets.write_private(path, values)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert secrets.read_private(path) == values
    assert [p.name for p in path.parent.iterdir()] == ["k.properties"], "no staged file left behind"


def test_a_secret_override_goes_to_a_launch_file_merged_over_the_kernelspecs(tmp_path: Path) -> None:
    """%spark conf KEY=VALUE for a secret key: never on the command line; the kernelspec's secrets kept."""
    kernelspec_file = tmp_path / "spec.properties"
    secrets.write_private(kernelspec_file, {"spark.hadoop.fs.s3a.secret.key": "from-install"})
    submit = kernelspec.submit_args(SparkOptions(conf={"spark.x": "1"}), kernelspec_file, "4.3.0")
    launch = tmp_path / "launch"
    launch.mkdir(mode=0o700)
    args = settings.SessionSettings(submit_args=submit).launch_submit_args({"spark.hadoop.fs.s3a.session.token": "from-cell", "spark.y": "2"}, str(launch))
    assert "from-cell" not in args and "from-install" not in args and "spark.y=2" in args
    words = shlex.split(args)
    assert words.count("--properties-file") == 1 and words.count("--load-spark-defaults") == 1
    used = Path(words[words.index("--properties-file") + 1])
    assert used.parent == launch and stat.S_IMODE(used.stat().st_mode) == 0o600
    assert secrets.read_private(used) == {"spark.hadoop.fs.s3a.secret.key": "from-install", "spark.hadoop.fs.s3a.session.token": "from-cell"}


# -- the command line ---------------------------------------------------------------------------------
def private_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "JUPYTER_DATA_DIR": str(tmp_path / "data")}


def test_install_show_list_remove_with_a_secret(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    result = cli("install", "--prefix", str(tmp_path / "p"), "--name", "sec", "--no-cds", "--conf", "spark.hadoop.fs.s3a.secret.key=install-secret-1", env=env)
    assert result.returncode == 0, result.stderr
    stored = list((tmp_path / "data" / "pyspark-kernel" / "secrets").glob("sec-*.properties"))
    assert len(stored) == 1 and str(stored[0]) in result.stdout and "0600" in result.stdout, result.stdout
    assert "install-secret-1" not in result.stdout + result.stderr
    folder = tmp_path / "p" / "share" / "jupyter" / "kernels" / "sec"
    assert all("install-secret-1" not in path.read_text(errors="replace") for path in folder.iterdir())
    for command in (["show", "sec"], ["list"]):
        shown = cli(*command, "--prefix", str(tmp_path / "p"), env=env)
        assert shown.returncode == 0 and "install-secret-1" not in shown.stdout, shown.stdout
    assert cli("remove", "sec", "--prefix", str(tmp_path / "p"), env=env).returncode == 0
    assert not stored[0].exists(), "remove takes the kernelspec's secret file with it"


def test_connect_token_is_masked_in_show_and_list(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    result = cli("install", "--prefix", str(tmp_path / "p"), "--name", "ct", "--remote", "sc://h:15002/;token=connect-token-1;use_ssl=true", env=env)
    assert result.returncode == 0, result.stderr
    spec_text = (tmp_path / "p" / "share" / "jupyter" / "kernels" / "ct" / "kernel.json").read_text()
    assert "connect-token-1" not in spec_text + result.stdout and "sc://h:15002/;use_ssl=true" in spec_text
    for command in (["show", "ct"], ["list"]):
        shown = cli(*command, "--prefix", str(tmp_path / "p"), env=env)
        assert shown.returncode == 0 and "connect-token-1" not in shown.stdout, shown.stdout


def test_replace_without_secrets_removes_the_old_file(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    base = ["install", "--prefix", str(tmp_path / "p"), "--name", "r", "--no-cds"]
    assert cli(*base, "--conf", "spark.a.password=first-secret", env=env).returncode == 0
    assert cli(*base, "--replace", env=env).returncode == 0
    assert list((tmp_path / "data" / "pyspark-kernel" / "secrets").iterdir()) == []


def test_a_failed_kernelspec_write_leaves_no_secret_file(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")  # unwritable as a prefix, even for root
    result = cli("install", "--prefix", str(tmp_path / "a-file" / "p"), "--name", "f", "--no-cds", "--conf", "spark.a.password=never-kept", env=env)
    assert result.returncode == 2 and result.stderr.startswith("pyspark-kernel install: error: Cannot write the kernelspec"), result.stderr
    assert "Fix:" in result.stderr and "never-kept" not in result.stderr
    assert not list((tmp_path / "data").rglob("*.properties")), "the secret file of a failed install remains"


def test_a_failed_replace_keeps_the_old_secret_file(tmp_path: Path) -> None:
    """--replace that cannot write the kernelspec: the old kernelspec keeps the secrets it had."""
    env = private_env(tmp_path)
    prefix = tmp_path / "p"
    base = ["install", "--prefix", str(prefix), "--name", "k", "--no-cds"]
    assert cli(*base, "--conf", "spark.a.password=old-secret", env=env).returncode == 0
    kernels = prefix / "share" / "jupyter" / "kernels"
    shutil.rmtree(kernels / "k")
    (kernels / "k").write_text("a file where the kernelspec folder was")  # jupyter_client's copy fails
    assert cli(*base, "--replace", "--conf", "spark.a.password=new-secret", env=env).returncode != 0
    stored = list((tmp_path / "data").rglob("*.properties"))
    assert len(stored) == 1 and secrets.read_private(stored[0]) == {"spark.a.password": "old-secret"}


def test_a_failed_secret_write_leaves_no_kernelspec(tmp_path: Path) -> None:
    env = {**os.environ, "JUPYTER_DATA_DIR": str(tmp_path / "a-file")}
    (tmp_path / "a-file").write_text("not a folder")
    result = cli("install", "--prefix", str(tmp_path / "p"), "--name", "g", "--no-cds", "--conf", "spark.a.password=never-kept", env=env)
    assert result.returncode == 2 and result.stderr.startswith("pyspark-kernel install: error: Cannot write the secret file"), result.stderr
    assert "Fix:" in result.stderr and "never-kept" not in result.stderr
    assert not (tmp_path / "p" / "share" / "jupyter" / "kernels" / "g").exists()


def test_a_secret_spark_would_change_is_refused(tmp_path: Path) -> None:
    result = cli("install", "--prefix", str(tmp_path / "p"), "--name", "w", "--no-cds", "--conf", "spark.a.password= padded ", env=private_env(tmp_path))
    assert result.returncode == 2 and "white space" in result.stderr and "Fix: remove the spaces" in result.stderr, result.stderr
    assert not list(tmp_path.rglob("kernel.json")) and not list(tmp_path.rglob("*.properties"))


# -- from a second local account ----------------------------------------------------------------------
# Both probes run as the second account with the system Python and get the secrets on stdin: a secret in
# their own argv would be on a command line too.
READ_PROBE = r"""
import json, os, sys
needles = sys.stdin.read().split()
report = {}
def look(path):
    try:
        with open(path, errors="replace") as handle:
            text = handle.read()
    except OSError:
        report[path] = "denied"
        return
    report[path] = "LEAK" if any(needle in text for needle in needles) else "clean"
for root in sys.argv[1:]:
    if not os.path.isdir(root):
        look(root)
        continue
    for folder, _, names in os.walk(root, onerror=lambda error: report.__setitem__(error.filename, "denied")):
        for name in names:
            look(os.path.join(folder, name))
print(json.dumps(report))
"""
PS_PROBE = r"""
import json, os, subprocess, sys, time
needles = sys.stdin.readline().split()
stop_file, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
samples, saw_spark, leaks = 0, 0, []
while time.monotonic() < deadline and not os.path.exists(stop_file):
    listing = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout  # -ww: whole lines, whatever COLUMNS says
    samples += 1
    saw_spark += "org.apache.spark.deploy.SparkSubmit" in listing  # far right on a JVM's line: proves whole lines
    leaks += [line[:400] for line in listing.splitlines() if any(needle in line for needle in needles)]
    time.sleep(0.1)
print(json.dumps({"samples": samples, "saw_spark": saw_spark, "leaks": leaks[:5]}))
"""


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder every local account can enter and read (0755), as a venv or a shared prefix is: only the
    modes of what the install writes in it may keep the second account out."""
    folder = Path(tempfile.mkdtemp(prefix="pyspark-kernel-secrets-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


class PsWatch:
    """``ps -eo args`` sampled every 0.1 s as the second account until ``stop()``: what a neighbour sees."""

    def __init__(self, folder: Path, needles: list[str]) -> None:
        self.stop_file = folder / "stop-watching"
        command = ["runuser", "-u", "pyspark-probe", "--", SYSTEM_PYTHON, "-c", PS_PROBE, str(self.stop_file), "900"]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdin is not None
        self.process.stdin.write(" ".join(needles) + "\n")
        self.process.stdin.close()

    def stop(self) -> dict[str, object]:
        self.stop_file.touch()
        assert self.process.stdout is not None
        output = self.process.stdout.read()  # the probe ends at its next sample, within 0.1 s
        self.process.wait(60)
        return json.loads(output)


def unreadable_by_second_account(paths: list[Path], needles: list[str]) -> dict[str, str]:
    """What the second account reads of every file under ``paths``: "denied", "clean" or "LEAK"."""
    result = as_second_account([SYSTEM_PYTHON, "-c", READ_PROBE, *map(str, paths)], input="\n".join(needles))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def new_secret(label: str) -> str:
    return f"{label}-{random_secrets.token_hex(8)}"


@pytest.mark.slow
def test_a_secret_conf_reaches_spark_and_no_other_account_sees_it(second_account: str, shared_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s3_key, password, cell_token, env_token = new_secret("s3key"), new_secret("pw"), new_secret("celltok"), new_secret("envtok")
    needles = [s3_key, password, cell_token, env_token]
    data, prefix = shared_folder / "data", shared_folder / "prefix"
    env = {**os.environ, "JUPYTER_DATA_DIR": str(data)}
    # --secret-conf reads the values from stdin: install's own command line has none of them. (--env and
    # --conf KEY=VALUE would show theirs for install's second of life; the watch begins after it.)
    install_command = [
        "install",
        "--prefix",
        str(prefix),
        "--name",
        "secret-probe",
        "--no-cds",
        "--secret-conf",
        "spark.hadoop.fs.s3a.secret.key",
        "--secret-conf",
        "spark.kernel.test.password",
        "--env",
        "PYSPARK_KERNEL_TEST_TOKEN",
        env_token,
    ]
    installed = cli(*install_command, input=f"{s3_key}\n{password}\n", env=env)
    assert installed.returncode == 0, installed.stderr
    watch = PsWatch(shared_folder, needles)
    kernel = None
    try:
        monkeypatch.setenv("JUPYTER_PATH", f"{prefix}/share/jupyter{os.pathsep}{os.environ.get('JUPYTER_PATH', '')}")
        kernel = KernelHarness("secret-probe")
        assert kernel.value("spark.conf.get('spark.hadoop.fs.s3a.secret.key')") == repr(s3_key)
        assert kernel.value("sc._jsc.hadoopConfiguration().get('fs.s3a.secret.key')") == repr(s3_key)
        assert kernel.value("spark.conf.get('spark.kernel.test.password')") == repr(password)
        assert kernel.value("sc._jvm.java.lang.System.getenv('PYSPARK_KERNEL_TEST_TOKEN')") == repr(env_token), "the JVM inherits a secret --env"
        kernel.run(f"%spark conf spark.hadoop.fs.s3a.session.token={cell_token}")
        assert kernel.value("spark.conf.get('spark.hadoop.fs.s3a.session.token')") == repr(cell_token)
        assert kernel.value("spark.conf.get('spark.hadoop.fs.s3a.secret.key')") == repr(s3_key), "the kernelspec's secrets stay after %spark conf"
        listed = kernel.run("%spark conf")
        assert cell_token not in json.dumps(listed["outputs"]) and "spark.hadoop.fs.s3a.session.token=" in json.dumps(listed["outputs"])
        time.sleep(3)  # a few more samples of the kernel at rest
        from pyspark_kernel import localdirs

        spec = json.loads((prefix / "share" / "jupyter" / "kernels" / "secret-probe" / "kernel.json").read_text())
        secret_file = spec["env"][secrets.PRIVATE_FILE_VAR]
        seen = unreadable_by_second_account([prefix, data, Path(secret_file), localdirs.user_root()], needles)
    finally:
        watched = watch.stop()
        if kernel is not None:
            kernel.shutdown()
    assert watched["samples"] > 20 and watched["saw_spark"], f"the probe saw no kernel or JVM in ps: {watched}"
    assert watched["leaks"] == [], f"a secret on a command line, seen by {second_account}: {watched['leaks']}"
    assert [path for path, state in seen.items() if state == "LEAK"] == [], seen
    assert seen[secret_file] == "denied" and seen[str(Path(secret_file).parent)] == "denied", seen
    assert seen[str(prefix / "share" / "jupyter" / "kernels" / "secret-probe" / "kernel.json")] == "clean", seen


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A Spark Connect server on 127.0.0.1 that wants a token (spark.connect.authenticate.token, given to
    it in its environment); yields (URL, token). Its own process is the test's, not the kernel's."""
    token = new_secret("connect")
    saved = os.environ.get("SPARK_CONNECT_AUTHENTICATE_TOKEN")
    os.environ["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = token
    try:
        server = running_connect_server(tmp_path_factory.mktemp("token-server"))
        url = server.__enter__()
    finally:  # the kernel must not find the token in its environment: only in its secret file
        os.environ.pop("SPARK_CONNECT_AUTHENTICATE_TOKEN", None) if saved is None else os.environ.__setitem__("SPARK_CONNECT_AUTHENTICATE_TOKEN", saved)
    try:
        yield url, token
    finally:
        server.__exit__(None, None, None)


@pytest.mark.slow
def test_a_connect_token_works_and_no_other_account_sees_it(
    second_account: str, shared_folder: Path, token_server: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, token = token_server
    port = url.rsplit(":", 1)[1]
    # With a token and no TLS, pyspark's client uses gRPC local credentials, which it allows for "localhost" only.
    remote = f"sc://localhost:{port}/;token={token}"
    data, prefix = shared_folder / "data", shared_folder / "prefix"
    env = {**os.environ, "JUPYTER_DATA_DIR": str(data)}
    installed = cli("install", "--prefix", str(prefix), "--name", "token-probe", "--remote", remote, env=env)
    assert installed.returncode == 0, installed.stderr
    assert token not in installed.stdout
    monkeypatch.setenv("JUPYTER_PATH", f"{prefix}/share/jupyter{os.pathsep}{os.environ.get('JUPYTER_PATH', '')}")
    watch = PsWatch(shared_folder, [token])
    kernel = KernelHarness("token-probe")
    try:
        assert kernel.value("spark.range(7).count()") == "7"
        refused = kernel.error(
            f"from pyspark.sql import SparkSession\nSparkSession.builder.remote('sc://localhost:{port}').create().range(1).count()", timeout=120
        )
        assert "authent" in (refused["evalue"] + refused["ename"]).lower() or "UNAUTHENTICATED" in json.dumps(refused), refused
        status = kernel.run("%spark")
        assert token not in json.dumps(status["outputs"]) and f"localhost:{port}" in json.dumps(status["outputs"])
        time.sleep(3)
        spec = json.loads((prefix / "share" / "jupyter" / "kernels" / "token-probe" / "kernel.json").read_text())
        secret_file = spec["env"][secrets.PRIVATE_FILE_VAR]
        seen = unreadable_by_second_account([prefix, data, Path(secret_file)], [token])
    finally:
        watched = watch.stop()
        kernel.shutdown()
    assert watched["samples"] > 20 and watched["saw_spark"], watched
    assert watched["leaks"] == [], f"the Connect token on a command line: {watched['leaks']}"
    assert [path for path, state in seen.items() if state == "LEAK"] == [], seen
    assert seen[secret_file] == "denied", seen
    for command in (["show", "token-probe"], ["list"]):
        shown = cli(*command, "--prefix", str(prefix), env=env)
        assert shown.returncode == 0 and token not in shown.stdout, shown.stdout


def test_secret_conf_reads_the_value_from_stdin_not_the_command_line(tmp_path: Path) -> None:
    """``install --conf KEY=VALUE`` puts VALUE on install's own command line for its second of life and in
    the shell's history; ``--secret-conf KEY`` reads it from stdin (a prompt without echo on a terminal),
    and keeps it private whatever its key: the rule cannot know every connector's secret settings."""
    env = private_env(tmp_path)
    command = [
        "install",
        "--prefix",
        str(tmp_path / "p"),
        "--name",
        "sc",
        "--no-cds",
        "--secret-conf",
        "spark.hadoop.fs.s3a.secret.key",
        "--secret-conf",
        "spark.mongodb.connection.uri",
    ]
    result = cli(*command, input="stdin-secret-1\nmongodb://u:stdin-secret-2@h/db\n", env=env)
    assert result.returncode == 0, result.stderr
    spec_text = (tmp_path / "p" / "share" / "jupyter" / "kernels" / "sc" / "kernel.json").read_text()
    assert "stdin-secret" not in spec_text + result.stdout + result.stderr
    (stored,) = (tmp_path / "data" / "pyspark-kernel" / "secrets").glob("sc-*.properties")
    assert secrets.read_private(stored) == {
        "spark.hadoop.fs.s3a.secret.key": "stdin-secret-1",
        "spark.mongodb.connection.uri": "mongodb://u:stdin-secret-2@h/db",
    }


def test_secret_conf_adds_a_connect_urls_token(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    command = ["install", "--prefix", str(tmp_path / "p"), "--name", "st", "--remote", "sc://h:15002/;use_ssl=true", "--secret-conf", "token"]
    result = cli(*command, input="stdin-token-1\n", env=env)
    assert result.returncode == 0, result.stderr
    spec = json.loads((tmp_path / "p" / "share" / "jupyter" / "kernels" / "st" / "kernel.json").read_text())
    assert spec["env"]["SPARK_REMOTE"] == "sc://h:15002/;use_ssl=true"
    assert secrets.read_private(Path(spec["env"][secrets.PRIVATE_FILE_VAR])) == {"pyspark.kernel.remote.token": "stdin-token-1"}


def test_secret_conf_without_a_value_is_refused(tmp_path: Path) -> None:
    command = ["install", "--prefix", str(tmp_path / "p"), "--name", "sn", "--no-cds", "--secret-conf", "spark.a.password"]
    result = cli(*command, input="", env=private_env(tmp_path))
    assert result.returncode == 2 and "--secret-conf spark.a.password" in result.stderr and "Fix:" in result.stderr, result.stderr
    assert not list(tmp_path.rglob("kernel.json")) and not list(tmp_path.rglob("*.properties"))


@pytest.mark.slow
def test_a_builders_secret_stays_off_the_jvms_command_line(second_account: str, shared_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When no JVM runs (%spark stop ended it; a lazy kernel has none yet), a notebook's builder launches
    one, and pyspark puts the builder's settings on spark-submit's command line: the secret ones go to
    the launch's 0600 properties file instead, as %spark conf's do."""
    builder_key = new_secret("builderkey")
    prefix = shared_folder / "prefix"
    assert (
        cli(
            "install", "--prefix", str(prefix), "--name", "builder-probe", "--no-cds", env={**os.environ, "JUPYTER_DATA_DIR": str(shared_folder / "data")}
        ).returncode
        == 0
    )
    monkeypatch.setenv("JUPYTER_PATH", f"{prefix}/share/jupyter{os.pathsep}{os.environ.get('JUPYTER_PATH', '')}")
    watch = PsWatch(shared_folder, [builder_key])
    kernel = KernelHarness("builder-probe")
    try:
        assert kernel.value("spark.range(3).count()") == "3"
        kernel.run("%spark stop")
        rebuilt = f"SparkSession.builder.config('spark.hadoop.fs.s3a.access.key', {builder_key!r}).getOrCreate()"
        assert kernel.value(f"from pyspark.sql import SparkSession\n{rebuilt}.conf.get('spark.hadoop.fs.s3a.access.key')") == repr(builder_key)
        launched_with = "spark.sparkContext._jvm.java.lang.System.getProperty('spark.hadoop.fs.s3a.access.key')"
        assert kernel.value(launched_with) == repr(builder_key), "spark-submit did not get the builder's setting at the JVM's launch"
        time.sleep(3)
    finally:
        watched = watch.stop()
        kernel.shutdown()
    assert watched["samples"] > 20 and watched["saw_spark"], watched
    assert watched["leaks"] == [], f"a builder's secret on a command line, seen by {second_account}: {watched['leaks']}"
