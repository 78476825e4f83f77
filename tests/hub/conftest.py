"""Fixtures of the JupyterHub test: the accounts, the venv copy they run, the kernelspecs, one hub per module."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import REPO, free_port

from hub import userenv
from hub.harness import Hub, HubUser, accounts_processes, environment_for, start_hub, stop_hub, user_token


@pytest.fixture(scope="session")
def hub_accounts() -> tuple[str, ...]:
    """The hub's two users, real local accounts (useradd, with homes)."""
    userenv.require_root_and_useradd()
    accounts = userenv.make_accounts()
    left = accounts_processes(accounts)  # by a run that was killed before its teardown: the accounts are the test's alone
    for process in left:
        process.kill()
    psutil.wait_procs(left, timeout=30)
    for account in accounts:  # and the files of that run's servers, which a killed server leaves
        shutil.rmtree(Path("/tmp", f"spark-connect-{account}"), ignore_errors=True)
    return accounts


@pytest.fixture(scope="session")
def hub_python(hub_accounts: tuple[str, ...]) -> Iterator[Path]:
    """The python of a world-readable copy of this venv (userenv.py says why), checked as each user."""
    root = Path(tempfile.mkdtemp(prefix="pyspark-hub-"))
    try:
        python = userenv.runnable_copy(root, REPO)
        for account in hub_accounts:
            userenv.check_runs_as(account, python)
        yield python
    finally:
        shutil.rmtree(root, ignore_errors=True)


def kernels_prefix(python: Path) -> Path:
    """Where the test's kernelspecs go: beside the venv copy, readable by every account."""
    return python.parent.parent.parent / "kernels"


def install_as_users_see_it(python: Path, *args: str) -> str:
    """``pyspark-kernel install --prefix <kernels_prefix> ARGS`` run by the copy's python, so the
    kernelspec's argv, PYSPARK_PYTHON and SPARK_HOME are paths the users can run; the kernelspec's name."""
    prefix = kernels_prefix(python)
    result = subprocess.run(
        [str(python), "-m", "pyspark_kernel", "install", "--prefix", str(prefix), "--no-cds", "--replace", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": userenv.library_path(python), "HOME": str(prefix)},
    )
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.splitlines()[0].rsplit(" in ", 1)[1]).name


@pytest.fixture(scope="session")
def classic_kernelspec(hub_python: Path) -> str:
    """A classic kernelspec (one driver JVM per kernel)."""
    return install_as_users_see_it(hub_python, "--name", "pyspark-hub-classic")


@pytest.fixture(scope="session")
def shared_kernelspec(hub_python: Path) -> str:
    """The shared local Spark Connect mode: a user's kernels share one server JVM of that user's. Its idle
    time is longer than the test's waits, so only the hub's stop can explain a server that is gone."""
    return install_as_users_see_it(hub_python, "--name", "pyspark-hub-shared", "--remote", "local[*]", "--server-idle-timeout", "600")


@pytest.fixture(scope="module")
def hub(hub_accounts: tuple[str, ...], hub_python: Path) -> Iterator[Hub]:
    """One JupyterHub for the module's tests, on free ports of 127.0.0.1, stopped (and all it started) at the end."""
    folder = Path(tempfile.mkdtemp(prefix="pyspark-hub-state-"))  # 0700: the db and cookie secret are root's
    running = Hub(folder=folder, port=free_port(), admin_token=secrets.token_hex(32), users=hub_accounts)
    environment = environment_for(hub_python, userenv.library_path(hub_python), kernels_prefix(hub_python) / "share" / "jupyter")
    try:
        start_hub(running, free_port(), free_port(), hub_python, environment)
        yield running
    finally:
        stop_hub(running)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def hub_users(hub: Hub) -> list[HubUser]:
    """Each account as a hub user, with an API token of theirs made through the hub's API."""
    return [HubUser(name, user_token(hub, name)) for name in hub.users]
