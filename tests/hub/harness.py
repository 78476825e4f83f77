"""A real JupyterHub on 127.0.0.1 for the tests: its config, its start and stop, its REST API, and
notebooks' kernels driven through its proxy as a browser would (REST, then the kernel's websocket).

Nothing is mocked: JupyterHub from PyPI, configurable-http-proxy from npm, the default
LocalProcessSpawner (the hub runs as root and starts each user's ``jupyterhub-singleuser`` as that
user), DummyAuthenticator (no network; the test never logs in with a password: it acts for each user
with an API token that an admin service creates through the hub's API, as an admin's script would).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
import websocket

ADMIN_SERVICE = "hub-test-admin"


@dataclass
class Hub:
    """A JupyterHub process, its folder (config, sqlite db, cookie secret, logs) and its public port."""

    folder: Path
    port: int
    admin_token: str
    process: subprocess.Popen[bytes] | None = None
    users: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, characters: int = 4000) -> str:
        """The end of the hub's log (the proxy's and the users' servers' lines are in it too)."""
        path = self.folder / "hub.log"
        return path.read_text(errors="replace")[-characters:] if path.exists() else ""

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        """The hub's REST API through the proxy (``/hub/api/<path>``), as the admin service by default."""
        headers = {"Authorization": f"token {token or self.admin_token}"}
        return requests.request(method, f"{self.url}/hub/api/{path}", headers=headers, timeout=60, allow_redirects=False, **kwargs)

    def get(self, path: str, token: str | None) -> requests.Response:
        """A GET of ``path`` through the proxy, with ``token`` as a user's client sends it (or none)."""
        headers = {"Authorization": f"token {token}"} if token else {}
        return requests.get(f"{self.url}{path}", headers=headers, timeout=90, allow_redirects=False)


def config_text(hub: Hub, hub_port: int, proxy_api_port: int, python: Path, environment: dict[str, str]) -> str:
    """jupyterhub_config.py: every listener on 127.0.0.1, every file in the hub's folder."""
    proxy = shutil.which("configurable-http-proxy")
    settings = {
        "JupyterHub.ip": "127.0.0.1",
        "JupyterHub.port": hub.port,
        "JupyterHub.hub_ip": "127.0.0.1",
        "JupyterHub.hub_port": hub_port,
        "JupyterHub.db_url": f"sqlite:///{hub.folder / 'jupyterhub.sqlite'}",
        "JupyterHub.cookie_secret_file": str(hub.folder / "cookie_secret"),
        "JupyterHub.pid_file": str(hub.folder / "hub.pid"),
        "JupyterHub.authenticator_class": "dummy",
        "JupyterHub.cleanup_servers": True,
        "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{proxy_api_port}",
        "ConfigurableHTTPProxy.command": [proxy],
        "ConfigurableHTTPProxy.pid_file": str(hub.folder / "proxy.pid"),
        "ConfigurableHTTPProxy.auth_token": secrets.token_hex(32),
        "Authenticator.allowed_users": set(hub.users),
        "JupyterHub.services": [{"name": ADMIN_SERVICE, "api_token": hub.admin_token}],
        "JupyterHub.load_roles": [{"name": "admin", "services": [ADMIN_SERVICE]}],
        "Spawner.cmd": [str(python), "-m", "jupyterhub.singleuser"],
        "Spawner.ip": "127.0.0.1",
        "Spawner.environment": environment,
        "Spawner.start_timeout": 180,
        "Spawner.http_timeout": 180,
    }
    return "".join(f"c.{name} = {value!r}\n" for name, value in settings.items())


def start_hub(hub: Hub, hub_port: int, proxy_api_port: int, python: Path, environment: dict[str, str]) -> None:
    """Start the hub (it starts the proxy) and wait, up to 120 s, until its API answers through the proxy."""
    config = hub.folder / "jupyterhub_config.py"
    config.write_text(config_text(hub, hub_port, proxy_api_port, python, environment))
    jupyterhub = Path(sys.executable).parent / "jupyterhub"
    with open(hub.folder / "hub.log", "ab") as log:
        hub.process = subprocess.Popen([str(jupyterhub), "-f", str(config)], cwd=hub.folder, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if hub.process.poll() is not None:
            raise AssertionError(f"JupyterHub exited with {hub.process.returncode}:\n{hub.log_tail()}")
        try:
            if hub.api("GET", "").status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"JupyterHub did not answer on {hub.url} within 120 s:\n{hub.log_tail()}")


def stop_hub(hub: Hub) -> None:
    """Stop the hub (it stops the users' servers and the proxy), then whatever is left of what this
    test started, by PID: the proxy named in its pid file, and any process of the hub's test accounts."""
    if hub.process is not None and hub.process.poll() is None:
        hub.process.send_signal(signal.SIGTERM)
        try:
            hub.process.wait(90)
        except subprocess.TimeoutExpired:
            hub.process.kill()
            hub.process.wait(30)
    leftovers = accounts_processes(hub.users)
    pid_file = hub.folder / "proxy.pid"
    if pid_file.exists():
        try:
            leftovers.append(psutil.Process(int(pid_file.read_text().strip())))
        except (ValueError, psutil.NoSuchProcess):
            pass
    for process in leftovers:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(leftovers, timeout=30)
    for process in alive:
        process.kill()


def accounts_processes(accounts: tuple[str, ...]) -> list[psutil.Process]:
    """Every live process of ``accounts`` (the hub's test accounts run only what this test started)."""
    import pwd

    uids = {pwd.getpwnam(name).pw_uid for name in accounts}
    found = []
    for process in psutil.process_iter(["uids", "status"]):
        uids_of = process.info["uids"]
        # A zombie has exited (its memory is freed); it waits for its reaper, which here is the machine's init.
        if uids_of is not None and uids_of.real in uids and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def java_processes_of(account: str, main_class: str | None = None) -> list[psutil.Process]:
    """The java processes running as ``account`` (by real uid), those whose command line names
    ``main_class`` if given."""
    found = []
    for process in accounts_processes((account,)):
        try:
            if "java" not in process.name():
                continue
            if main_class is None or main_class in process.cmdline():
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


@dataclass
class HubUser:
    """One of the hub's users: name and an API token of theirs (made through the admin service)."""

    name: str
    token: str
    notebooks: list[HubNotebook] = field(default_factory=list)


def start_server(hub: Hub, name: str, timeout: float = 240) -> None:
    """Start ``name``'s server through the hub's API and wait until the hub says it is ready."""
    answer = hub.api("POST", f"users/{name}/server")
    assert answer.status_code in (201, 202), f"starting {name}'s server: {answer.status_code} {answer.text}\n{hub.log_tail()}"
    wait_server(hub, name, ready=True, timeout=timeout)


def stop_server(hub: Hub, name: str, timeout: float = 120) -> None:
    """Stop ``name``'s server through the hub's API (``DELETE /hub/api/users/<name>/server``), wait until gone."""
    answer = hub.api("DELETE", f"users/{name}/server")
    assert answer.status_code in (202, 204), f"stopping {name}'s server: {answer.status_code} {answer.text}"
    wait_server(hub, name, ready=False, timeout=timeout)


def wait_server(hub: Hub, name: str, ready: bool, timeout: float) -> None:
    """Wait until the hub's model of ``name`` shows the server ready (``ready``) or gone (not ``ready``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = hub.api("GET", f"users/{name}").json().get("servers", {}).get("")
        if (ready and server is not None and server.get("ready")) or (not ready and server is None):
            return
        time.sleep(0.5)
    raise AssertionError(f"{name}'s server did not become {'ready' if ready else 'stopped'} within {timeout} s:\n{hub.log_tail()}")


def user_token(hub: Hub, name: str) -> str:
    """An API token of ``name``'s (the user's own permissions: their server, nobody else's)."""
    answer = hub.api("POST", f"users/{name}/tokens", json={"note": "hub test", "expires_in": 3600})
    assert answer.status_code == 201, f"a token for {name}: {answer.status_code} {answer.text}"
    return str(answer.json()["token"])


@dataclass
class HubNotebook:
    """A notebook's session on a user's server, opened through the hub, and its kernel's websocket."""

    hub: Hub
    user: str
    token: str
    path: str
    kernel_id: str = ""
    socket: websocket.WebSocket | None = None
    session: str = field(default_factory=lambda: uuid.uuid4().hex)

    def open(self, kernel_name: str) -> None:
        """``POST /user/<name>/api/sessions`` (what JupyterLab does for a new notebook), then the websocket."""
        answer = requests.post(
            f"{self.hub.url}/user/{self.user}/api/sessions",
            headers={"Authorization": f"token {self.token}"},
            json={"path": self.path, "name": self.path, "type": "notebook", "kernel": {"name": kernel_name}},
            timeout=120,
        )
        assert answer.status_code == 201, f"{self.user} opening {self.path}: {answer.status_code} {answer.text}"
        self.kernel_id = answer.json()["kernel"]["id"]
        url = f"ws://127.0.0.1:{self.hub.port}/user/{self.user}/api/kernels/{self.kernel_id}/channels?session_id={self.session}"
        self.socket = websocket.create_connection(url, header=[f"Authorization: token {self.token}"], timeout=60)

    def run(self, code: str, timeout: float = 240) -> list[dict[str, Any]]:
        """Execute ``code`` over the websocket; the cell's outputs (iopub), once its reply came."""
        assert self.socket is not None
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "username": self.user, "session": self.session, "msg_type": "execute_request", "version": "5.3"}
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
        self.socket.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell", "buffers": []}))
        outputs: list[dict[str, Any]] = []
        replied = idle = False
        deadline = time.monotonic() + timeout
        while not (replied and idle):
            self.socket.settimeout(max(1.0, deadline - time.monotonic()))
            message = json.loads(self.socket.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "execute_reply":
                replied = True
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                idle = True
            elif kind in ("stream", "display_data", "execute_result", "error"):
                outputs.append({"type": kind, **message["content"]})
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.user}'s {self.path}: no reply to {code!r} within {timeout} s; outputs so far {outputs}")
        return outputs

    def value(self, code: str) -> str:
        """The text/plain result of ``code``; fails with the traceback if it raised."""
        outputs = self.run(code)
        errors = [output for output in outputs if output["type"] == "error"]
        assert not errors, "\n".join(errors[0]["traceback"])
        results = [output["data"]["text/plain"] for output in outputs if output["type"] == "execute_result"]
        assert results, f"{code!r} returned nothing: {outputs}"
        return results[-1]

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None


def ui_link(outputs: list[dict[str, Any]]) -> str | None:
    """The Spark UI link of the session line (kernel/namespace.py's banner) among a cell's outputs."""
    for output in outputs:
        text = output.get("data", {}).get("text/plain", "") if output["type"] == "display_data" else output.get("text", "")
        match = re.search(r"Spark UI (\S+)", text)
        if match:
            return match.group(1)
    return None


def environment_for(python: Path, library_path: str, jupyter_path: Path) -> dict[str, str]:
    """What the spawner adds to each user's server (and so to its kernels): the copy's libpython, the
    test's kernelspecs, and Java as root's environment names it."""
    environment = {"LD_LIBRARY_PATH": library_path, "JUPYTER_PATH": str(jupyter_path), "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin"}
    if os.environ.get("JAVA_HOME"):
        environment["JAVA_HOME"] = os.environ["JAVA_HOME"]
    return environment
