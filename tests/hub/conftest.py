"""Fixtures of the JupyterHub test: the accounts, the venv copy they run, the kernelspecs, one hub per module."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, free_port
from hub import userenv
from hub.harness import Hub, HubUser, environment_for, start_hub, start_server, stop_hub, user_token


@pytest.fixture(scope="session")
def hub_accounts() -> tuple[str, ...]:
    """The hub's two users, real local accounts (useradd, with homes)."""
    userenv.require_root_and_useradd()
    return userenv.make_accounts()


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
    """Each account as a hub user with a token of theirs, their server started through the hub's API."""
    users = [HubUser(name, user_token(hub, name)) for name in hub.users]
    for user in users:
        start_server(hub, user.name)
    return users
