"""Each JVM's temp files in its own folder; a SIGKILLed JVM's folder is removed at the next kernel start.

The decision (whose folder, is its owner alive) is tested without a JVM, on real processes and real
folders. The wiring is tested on real kernels started from a CLI-installed kernelspec, each with a
TMPDIR of its own, so that other kernels on this machine never sweep (or feed) the folders looked at.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import KernelHarness, cli

from pyspark_kernel import localdirs
from pyspark_kernel.kernel import jvm, launchdirs
from pyspark_kernel.kernel.settings import SessionSettings

ME = localdirs.Process(os.getpid(), psutil.Process().create_time())
MY_UID = os.getuid()
HOST = localdirs.host_identity()
NOBODY = pwd.getpwnam("nobody").pw_uid
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a folder of another user (chown) needs root")
# Every path the JVM would delete at a clean exit (Spark's ShutdownHookManager, read by reflection).
DELETE_AT_EXIT = (
    "(lambda cls: (lambda field: (field.setAccessible(True), list(field.get(cls.getField('MODULE$').get(None)).toList()"
    ".mkString('\\n').split('\\n')))[1])(cls.getDeclaredField('shutdownDeletePaths')))"
    "(spark.sparkContext._jvm.java.lang.Class.forName('org.apache.spark.util.ShutdownHookManager$'))"
)
CACHE_BLOCKS = (  # cached in memory as the repro does, and random doubles on disk: megabytes of blocks
    "from pyspark import StorageLevel; spark.range(10**6).cache().count(), spark.range(10**6).selectExpr('rand() AS x').persist(StorageLevel.DISK_ONLY).count()"
)


def dead_process() -> localdirs.Process:
    """A real process that has run and exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    found = localdirs.describe(child.pid)
    child.wait()
    assert found is not None
    return found


def folder_of_a_dead_kernel(tmpdir: Path, megabytes: int = 0) -> Path:
    """A folder made by a real process that then exited before launching a JVM, as a killed kernel leaves it."""
    code = (
        "import sys; from pyspark_kernel.kernel import launchdirs; folder = launchdirs.new_folder({'TMPDIR': sys.argv[1]}); "
        "(folder / 'blockmgr-x').mkdir(); (folder / 'blockmgr-x' / 'rdd_0_0').write_bytes(b'x' * int(sys.argv[2]) * 10**6); print(folder)"
    )
    made = subprocess.run([sys.executable, "-c", code, str(tmpdir), str(megabytes)], capture_output=True, text=True, check=True)
    return Path(made.stdout.strip())


# -- the decision, no JVM ---------------------------------------------------------------------------
def record(owner: localdirs.Process, jvm_process: localdirs.Process | None = None, host: str = HOST) -> dict[str, object]:
    made = {"host": host, "launcher": vars(owner)}
    return {**made, "jvm": vars(jvm_process)} if jvm_process else made


@pytest.mark.parametrize(
    ("case", "folder_record", "folder_uid", "leftover"),
    [
        ("launch in flight: kernel alive, no JVM yet", record(ME), MY_UID, False),
        ("kernel died before its JVM was launched", record(localdirs.Process(1, 1.0)), MY_UID, True),
        ("JVM alive, whatever its kernel", record(localdirs.Process(1, 1.0), ME), MY_UID, False),
        ("JVM dead under a live kernel", record(ME, localdirs.Process(1, 1.0)), MY_UID, True),
        ("another user's folder, all dead", record(localdirs.Process(1, 1.0)), NOBODY, False),
        ("another boot or container: its pids mean nothing here", record(localdirs.Process(1, 1.0), host="other"), MY_UID, False),
        ("no record", None, MY_UID, False),
        ("a record this code did not write", {"host": HOST, "launcher": {"pid": "x"}}, MY_UID, False),
    ],
)
def test_leftover_decision(case: str, folder_record: dict[str, object] | None, folder_uid: int, leftover: bool) -> None:
    alive = {ME}  # a pure predicate here; is_running itself is tested on real processes below
    verdict = localdirs.is_leftover(folder_record, folder_uid, MY_UID, HOST, lambda process: process in alive)
    assert verdict is leftover, case


def test_is_running_tells_a_reused_pid_and_a_zombie_from_the_owner() -> None:
    assert localdirs.is_running(ME)
    assert not localdirs.is_running(localdirs.Process(ME.pid, ME.create_time - 3600)), "same pid, another start time: another process"
    assert not localdirs.is_running(dead_process())
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # not waited for: a zombie once it exits
    started = localdirs.describe(zombie.pid)
    assert started is not None
    deadline = time.monotonic() + 30
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not localdirs.is_running(started), "an exited, unreaped JVM is dead"
    zombie.wait()


@needs_root
def test_leftovers_on_real_folders(tmp_path: Path) -> None:
    root = localdirs.user_root({"TMPDIR": str(tmp_path)})
    dead = folder_of_a_dead_kernel(tmp_path)
    live = launchdirs.new_folder({"TMPDIR": str(tmp_path)})
    assert live is not None
    dead_kernel_live_jvm = folder_of_a_dead_kernel(tmp_path)
    launchdirs.record_jvm(dead_kernel_live_jvm, os.getpid())  # this process stands in for a JVM still running
    live_kernel_dead_jvm = launchdirs.new_folder({"TMPDIR": str(tmp_path)})
    assert live_kernel_dead_jvm is not None
    launchdirs.record_jvm(live_kernel_dead_jvm, dead_process().pid)
    others = folder_of_a_dead_kernel(tmp_path)
    os.chown(others, NOBODY, NOBODY)
    (root / "a-file").write_text("not a folder")
    (root / "a-link").symlink_to(dead)

    assert sorted(localdirs.leftovers(root)) == sorted([dead, live_kernel_dead_jvm])
    assert sorted(localdirs.sweep(root)) == sorted([dead, live_kernel_dead_jvm])
    assert not dead.exists() and not live_kernel_dead_jvm.exists()
    assert live.is_dir() and dead_kernel_live_jvm.is_dir() and others.is_dir() and (root / "a-file").exists()
    assert oct(root.stat().st_mode & 0o777) == "0o700"


@needs_root
def test_a_root_that_is_not_this_users_is_not_used(tmp_path: Path) -> None:
    root = localdirs.user_root({"TMPDIR": str(tmp_path)})
    root.mkdir(mode=0o777)
    os.chown(root, NOBODY, NOBODY)
    assert launchdirs.new_folder({"TMPDIR": str(tmp_path)}) is None
    assert list(root.iterdir()) == [] and root.stat().st_uid == NOBODY
    os.chown(root, MY_UID, MY_UID)
    planted = folder_of_a_dead_kernel(tmp_path)  # a dead folder of this user, in a root someone else then owns
    os.chown(root, NOBODY, NOBODY)
    assert localdirs.sweep(root) == [] and planted.is_dir(), "a root that is not this user's is not swept"


def test_the_launch_conf_names_the_folder_unless_the_user_chose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.delenv("SPARK_LOCAL_DIRS", raising=False)
    settings = SessionSettings()
    folder = jvm.temp_folder(settings, {}, None)
    assert folder is not None and folder.parent == localdirs.user_root()
    assert f"spark.local.dir={folder}" in settings.launch_submit_args({}, str(folder))
    assert jvm.temp_folder(SessionSettings(submit_args="--conf spark.local.dir=/data/spark pyspark-shell"), {}, None) is None
    assert jvm.temp_folder(settings, {"spark.local.dir": "/data/spark"}, None) is None
    monkeypatch.setenv("SPARK_LOCAL_DIRS", "/data/spark")
    assert jvm.temp_folder(settings, {}, None) is None


def test_spark_defaults_conf_setting_the_local_dir_is_the_users_choice(tmp_path: Path) -> None:
    defaults = tmp_path / "spark-defaults.conf"
    defaults.write_text("# spark.local.dir /commented\nspark.master local[2]\n")
    assert not localdirs.user_chose_local_dirs({}, {"SPARK_CONF_DIR": str(tmp_path)})
    defaults.write_text("spark.master local[2]\n  spark.local.dir   /scratch/spark\n")
    assert localdirs.user_chose_local_dirs({}, {"SPARK_CONF_DIR": str(tmp_path)})
    assert localdirs.user_chose_local_dirs({}, {"SPARK_HOME": str(tmp_path.parent), "SPARK_CONF_DIR": ""}) is False


def test_check_reports_leftovers_and_its_fix_removes_them(default_spec: Path, tmp_path: Path) -> None:
    folder = folder_of_a_dead_kernel(tmp_path, megabytes=3)
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    row = temp_dirs_row(cli("check", default_spec.name, env=env).stdout)
    assert row.startswith("WARN") and f"1 temp folder(s) of dead JVMs hold 3.0 MB in {folder.parent}" in row, row
    fix = row.split("or run: ", 1)[1].split()
    subprocess.run(fix, env=env, check=True, capture_output=True, timeout=60)
    assert not folder.exists()
    assert temp_dirs_row(cli("check", default_spec.name, env=env).stdout).startswith("OK")


def temp_dirs_row(table: str) -> str:
    """The check's temp-dirs row with its fix line, if any."""
    lines = table.splitlines()
    index = next(i for i, line in enumerate(lines) if line[6:].startswith("temp dirs"))
    return "\n".join(lines[index : index + 2] if index + 1 < len(lines) and "fix:" in lines[index + 1] else lines[index : index + 1])


# -- the wiring, real kernels and JVMs ----------------------------------------------------------------
def local_dir(kernel: KernelHarness) -> Path:
    return Path(kernel.value("spark.sparkContext.getConf().get('spark.local.dir')").strip("'"))


def wait_for_sweep(kernel: KernelHarness) -> None:
    """Until the kernel's start-time sweep thread has ended (bounded)."""
    deadline = time.monotonic() + 120
    while kernel.value("any(t.name == 'pyspark-kernel-sweep' for t in __import__('threading').enumerate())") == "True":
        assert time.monotonic() < deadline, "the sweep did not end"
        time.sleep(0.2)


def kill(processes: list[psutil.Process]) -> None:
    """SIGKILL, then wait until each has exited: gone, or a zombie its parent has not reaped yet."""
    for process in processes:
        process.kill()
    deadline = time.monotonic() + 30
    while any(localdirs.is_running(localdirs.Process(process.pid, process.create_time())) for process in processes):
        assert time.monotonic() < deadline, "a killed process did not exit"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_sigkilled_jvms_folder_is_reported_then_removed_at_the_next_start(default_spec: Path, tmp_path: Path) -> None:
    env = {"TMPDIR": str(tmp_path)}
    first = KernelHarness(default_spec.name, env)
    try:
        first.value(CACHE_BLOCKS)
        folder = local_dir(first)
        assert folder.parent == localdirs.user_root(env), "the JVM writes into its own folder"
        assert first.value("spark.sparkContext._jvm.System.getProperty('java.io.tmpdir')").strip("'") == str(folder)
        outside = first.value(f"[path for path in {DELETE_AT_EXIT} if not path.startswith({str(folder)!r} + '/')]")
        assert outside == "[]", f"the JVM's temp dirs outside its folder: {outside}"
        kill(first.java_children())  # what the OOM killer does
        assert list(folder.glob("blockmgr-*")) and localdirs.size_of(folder) > 1_000_000, "the cached blocks are still on disk"
        kill([psutil.Process(first.pid)])  # and then the kernel is gone too, before any stop could clean up
    finally:
        first.shutdown()
    assert folder.is_dir()
    row = temp_dirs_row(cli("check", default_spec.name, env={**os.environ, **env}).stdout)
    assert f"1 temp folder(s) of dead JVMs hold {localdirs.size_of(folder) / 1e6:.1f} MB" in row, row

    second = KernelHarness(default_spec.name, env)
    try:
        wait_for_sweep(second)
        assert not folder.exists()
        assert local_dir(second).is_dir(), "the starting kernel's own folder stays"
    finally:
        second.shutdown()


@pytest.fixture(scope="module")
def tmp_kernel(default_spec: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KernelHarness, dict[str, str]]]:
    """A kernel with a TMPDIR of its own, shared by the tests below."""
    env = {"TMPDIR": str(tmp_path_factory.mktemp("tmpdir"))}
    kernel = KernelHarness(default_spec.name, env)
    yield kernel, env
    kernel.shutdown()


@pytest.mark.slow
@needs_root
def test_a_live_kernels_folder_and_another_users_survive_a_start(default_spec: Path, tmp_kernel: tuple[KernelHarness, dict[str, str]]) -> None:
    live, env = tmp_kernel
    live.value(CACHE_BLOCKS)
    live_folder = local_dir(live)
    tmpdir = Path(env["TMPDIR"])
    dead = folder_of_a_dead_kernel(tmpdir)  # the control: proves the sweep ran
    others = folder_of_a_dead_kernel(tmpdir)
    os.chown(others, NOBODY, NOBODY)

    starting = KernelHarness(default_spec.name, env)
    try:
        wait_for_sweep(starting)
    finally:
        starting.shutdown()
    assert not dead.exists()
    assert others.is_dir(), "another user's folder is never touched"
    assert live_folder.is_dir() and list(live_folder.glob("blockmgr-*")), "a live JVM's folder is never touched"
    assert live.value("spark.range(10**5).persist(__import__('pyspark').StorageLevel.DISK_ONLY).count()") == "100000"


@pytest.mark.slow
def test_restart_after_a_killed_jvm_removes_its_folder_at_once(tmp_kernel: tuple[KernelHarness, dict[str, str]]) -> None:
    kernel, _ = tmp_kernel
    kernel.value(CACHE_BLOCKS)
    killed = local_dir(kernel)
    kill(kernel.java_children())
    assert killed.is_dir()
    kernel.run("%spark restart")
    assert not killed.exists()
    assert local_dir(kernel).is_dir() and local_dir(kernel) != killed
