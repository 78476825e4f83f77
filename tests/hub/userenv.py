"""The hub's test accounts, and a copy of this venv that they can run.

JupyterHub's LocalProcessSpawner runs each user's ``jupyterhub-singleuser`` as that user, and the
kernels that server starts run as that user too. So the users need a Python with this project, pyspark
and JupyterHub. The venv of a checkout usually cannot serve: its interpreter is a link to its base
Python, which may live under a 0700 home (pyenv under /root here; a CI clone can sit there too), and
that base's binary loads its libpython through an absolute RUNPATH into that home.

So the test runs the users' side from a world-readable copy, made of hard links (about 2 s, no extra
space) where the copy is on the same filesystem, plain copies otherwise: the base Python, the venv
re-pointed at that base, and this checkout's package (an editable install maps it to the checkout).
The hub itself runs as root from the venv as it is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require

# Two accounts of their own (not the suite's pyspark-probe, which has no home): the spawner starts
# each user's server in that user's home, where Jupyter keeps its runtime files (the UI route's too).
HUB_ACCOUNTS = ("pyspark-hub-a", "pyspark-hub-b")


def require_root_and_useradd() -> None:
    """Skip (fail under CI=true) where this run cannot make accounts and act as them, as conftest's
    ``second_account`` does: this test is the proof of the shared-host story."""
    needs = {
        f"root (this run's euid is {os.geteuid()})": os.geteuid() == 0,
        "runuser": shutil.which("runuser") is not None,
        "useradd": shutil.which("useradd") is not None,
        "configurable-http-proxy (npm install -g configurable-http-proxy; scripts/ensure-system.sh --hub)": shutil.which("configurable-http-proxy") is not None,
    }
    require(needs, "the JupyterHub test needs {}")


def make_accounts() -> tuple[str, ...]:
    """The hub's users, made once with useradd (with a home, as the spawner needs), kept between runs."""
    for name in HUB_ACCOUNTS:
        if subprocess.run(["id", name], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "-m", "-s", "/usr/sbin/nologin", name], check=True, capture_output=True)
    return HUB_ACCOUNTS


def copy_tree(source: Path, target: Path) -> None:
    """``source`` at ``target``: hard links where the filesystem allows (the same inodes, so the same
    modes: root's 0644/0755 files), else a copy. Symlinks stay symlinks."""
    if subprocess.run(["cp", "-al", str(source), str(target)], capture_output=True).returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(["cp", "-a", str(source), str(target)], check=True, capture_output=True, timeout=600)


def rewrite(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` without touching the file it may be a hard link to (the checkout's)."""
    path.unlink()
    path.write_text(text)


def runnable_copy(root: Path, repo: Path) -> Path:
    """A copy of this venv under ``root`` (made 0755) that any local account can run; its python.

    ``root/base`` is the base Python, ``root/venv`` this venv pointing at it, ``root/src`` this
    checkout's package, which the venv's editable finder is re-pointed to."""
    if sys.prefix == sys.base_prefix:
        pytest.fail(f"the JupyterHub test runs from a venv (make setup makes .venv); this Python is {sys.executable}")
    root.chmod(0o755)
    base, venv, src = root / "base", root / "venv", root / "src"
    copy_tree(Path(sys.base_prefix), base)
    copy_tree(Path(sys.prefix), venv)
    src.mkdir(mode=0o755)
    for folder in ("pyspark_kernel", "kernelspecs"):
        copy_tree(repo / folder, src / folder)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for name in ("python", "python3", version):
        link = venv / "bin" / name
        if link.is_symlink() or link.exists():
            link.unlink()
    (venv / "bin" / version).symlink_to(base / "bin" / version)
    (venv / "bin" / "python3").symlink_to(version)
    (venv / "bin" / "python").symlink_to("python3")
    config = venv / "pyvenv.cfg"
    lines = [f"home = {base / 'bin'}" if line.startswith("home") else line for line in config.read_text().splitlines()]
    rewrite(config, "\n".join(lines) + "\n")
    for finder in (venv / "lib" / version / "site-packages").glob("__editable__*finder.py"):
        rewrite(finder, finder.read_text().replace(f"'{repo}/", f"'{src}/"))
    return venv / "bin" / "python"


def library_path(python: Path) -> str:
    """LD_LIBRARY_PATH for ``python`` (runnable_copy's): its base's lib folder, since the base binary's
    RUNPATH names the original, unreadable, place of libpython."""
    return str(python.parent.parent.parent / "base" / "lib")


def check_runs_as(account: str, python: Path) -> None:
    """Fail with what went wrong unless ``account`` can import what a hub user's server and kernel need."""
    probe = subprocess.run(
        [
            "runuser",
            "-u",
            account,
            "--",
            "env",
            f"LD_LIBRARY_PATH={library_path(python)}",
            str(python),
            "-c",
            "import jupyterhub.singleuser, pyspark, pyspark_kernel",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert probe.returncode == 0, f"{account} cannot run {python}: {probe.stderr[-1500:]}"
