"""JupyterLab for the browser tests: a real server on 127.0.0.1 with a token, kernelspecs installed by the CLI
into temporary prefixes, and Debian's Chromium (/usr/bin/chromium: Playwright's own browser download cannot
work here). Screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, free_port, install

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "test-artifacts" / "e2e"
TOKEN = "e2e-token"


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (make e2e and .ci/run install it)")


@contextlib.contextmanager
def running_jupyterlab(root: Path, jupyter_path: str | None = None, options: tuple[str, ...] = ()) -> Iterator[str]:
    """A JupyterLab serving ``root`` until the block ends, with ``jupyter_path`` (the kernelspecs it
    offers) as its JUPYTER_PATH when given, and more command-line ``options``; yields its URL. Stopped
    through its API, killed if that fails."""
    root.mkdir(exist_ok=True)
    port = free_port()
    env = {**os.environ, **({"JUPYTER_PATH": jupyter_path} if jupyter_path else {})}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={root}",
            "--allow-root",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {TOKEN}"}), timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        yield url
    finally:
        shutdown = urllib.request.Request(f"{url}/api/shutdown", method="POST", headers={"Authorization": f"token {TOKEN}"})
        try:
            urllib.request.urlopen(shutdown, timeout=10)  # also shuts its kernels down
            server.wait(30)
        except Exception:
            server.kill()
            server.wait(10)


@pytest.fixture(scope="module")
def lab(isolated_jupyter: Path, prefix: Path) -> Iterator[str]:
    """JupyterLab offering the default kernelspec, PySpark_Python3."""
    require_chromium()
    install(prefix, "--replace")
    with running_jupyterlab(isolated_jupyter / "lab-root") as url:
        yield url
