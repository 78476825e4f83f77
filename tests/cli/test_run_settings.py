"""``make run``'s JupyterLab asks nothing on its first start: no pop-up about Jupyter's news and updates.

JupyterLab 4 shows that question while the effective ``fetchNews`` setting is "none", its default. The
Makefile installs lab-settings/overrides.json where JupyterLab reads an environment's defaults; here the
rule installs it into a scratch folder, a real JupyterLab reads it, and its settings API must answer
"false" for fetchNews and false for checkForUpdates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

pytest.importorskip("jupyterlab", reason="JupyterLab is the lab extra (make setup installs it), not the test extra")

from conftest import REPO

SETTINGS_IN_ENV = Path("share", "jupyter", "lab", "settings", "overrides.json")  # under a venv, as the Makefile puts it
NOTIFICATION = "@jupyterlab/apputils-extension:notification"


def test_the_makefile_puts_the_overrides_where_jupyterlab_reads_an_environments_defaults(tmp_path: Path) -> None:
    from jupyterlab.labapp import LabApp

    assert Path(LabApp().app_settings_dir) == Path(sys.prefix) / SETTINGS_IN_ENV.parent
    venv = tmp_path / "venv"
    planned = subprocess.run(["make", "-C", str(REPO), "-n", "run", f"VENV={venv}"], capture_output=True, text=True, timeout=60)
    assert f"install -D -m 644 lab-settings/overrides.json {venv / SETTINGS_IN_ENV}" in planned.stdout, planned.stdout + planned.stderr


def test_jupyterlab_with_the_overrides_never_asks_about_news_or_updates(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    made = subprocess.run(["make", "-C", str(REPO), "-s", f"VENV={venv}", str(venv / SETTINGS_IN_ENV)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    settings = lab_settings(tmp_path, venv / SETTINGS_IN_ENV.parent, NOTIFICATION)
    defaults = {name: spec.get("default") for name, spec in settings["schema"]["properties"].items()}
    effective = {**defaults, **settings["settings"]}  # what the front end reads (the user's settings are empty here)
    assert effective["fetchNews"] == "false", effective  # "none" is what makes JupyterLab ask
    assert effective["checkForUpdates"] is False, effective


def lab_settings(work: Path, app_settings_dir: Path, plugin: str) -> dict[str, object]:
    """GET /lab/api/settings/PLUGIN from a JupyterLab started on 127.0.0.1 (a free port) with
    ``app_settings_dir``, then stop it by its PID."""
    runtime, token = work / "runtime", uuid.uuid4().hex
    env = {
        **os.environ,
        "JUPYTER_TOKEN": token,  # not on the command line
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_CONFIG_DIR": str(work / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(work / "user-settings"),  # no settings of this machine's user
        "JUPYTERLAB_WORKSPACES_DIR": str(work / "workspaces"),
    }
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", "--port=0", "--allow-root"]
    log = work / "lab.log"
    with log.open("w") as output:
        lab = subprocess.Popen(
            [*command, f"--ServerApp.root_dir={work}", f"--LabApp.app_settings_dir={app_settings_dir}"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        server_file = runtime / f"jpserver-{lab.pid}.json"
        deadline = time.monotonic() + 120
        while lab.poll() is None and not server_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server_file.is_file(), f"JupyterLab did not start: {log.read_text()[-2000:]}"
        port = json.loads(server_file.read_text())["port"]
        request = urllib.request.Request(f"http://127.0.0.1:{port}/lab/api/settings/{plugin}", headers={"Authorization": f"token {token}"})
        for _ in range(50):  # the runtime file is written as the server starts listening
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer: dict[str, object] = json.loads(response.read())
                    return answer
            except ConnectionError:
                time.sleep(0.2)
        raise AssertionError(f"JupyterLab on port {port} did not answer: {log.read_text()[-2000:]}")
    finally:
        lab.terminate()
        try:
            lab.wait(30)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait(10)
