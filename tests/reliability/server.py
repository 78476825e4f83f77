"""A real Jupyter server for the tests and `make burst` (bench/burst.py): started, driven over REST and
the kernel websocket as a browser tab drives it, and stopped by its PID.

Nothing here is mocked: the server is the venv's ``jupyter server`` in a subprocess on 127.0.0.1, with a
random token, and a notebook's cell reaches its kernel the way JupyterLab sends it (the Jupyter
message format as JSON frames on ``/api/kernels/<id>/channels``). The server's GET /api/kernels does
not give pids, so a kernel's process is found by its connection file name in the command line of the
server's children.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any

import psutil
from conftest import free_port, java_processes_under, wait_gone

START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 30.0


class JupyterServer:
    """``jupyter server`` in a subprocess; its output goes to ``log``, never the terminal.

    The JUPYTER_* variables of this process (isolated folders, JUPYTER_PATH with the test's kernelspecs)
    are inherited, ``env`` set over them; ``args`` are extra command-line options such as the culling settings."""

    def __init__(self, root: Path, log: IO[bytes] | int = subprocess.DEVNULL, args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        command = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--ServerApp.ip=127.0.0.1",
            f"--port={self.port}",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={root}",
            *(["--allow-root"] if os.geteuid() == 0 else []),
            *args,
        ]
        environ = {**os.environ, **env} if env else None
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT if log is not subprocess.DEVNULL else log, env=environ)
        self.headers = {"Authorization": f"token {self.token}", "Content-Type": "application/json"}
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter server exited with code {self.process.returncode} before it answered")
            try:
                self.request("GET", "/api/status", timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"jupyter server did not answer on 127.0.0.1:{self.port} within {START_TIMEOUT_SECONDS:.0f} s")

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 60) -> Any:
        """One REST call; the decoded JSON reply (None for 204). Raises OSError on HTTP errors too."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=self.headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            raise OSError(f"{method} {path}: HTTP {response.status} {data[:300]!r}")
        return json.loads(data) if data else None

    def open_notebook(self, path: str, kernel_name: str) -> dict[str, Any]:
        """POST /api/sessions as JupyterLab does when a notebook is opened; the session model."""
        return self.request("POST", "/api/sessions", {"path": path, "name": Path(path).name, "type": "notebook", "kernel": {"name": kernel_name}}, timeout=300)

    def kernel_ids(self) -> set[str]:
        return {kernel["id"] for kernel in self.request("GET", "/api/kernels", timeout=30)}

    def kernel_process(self, kernel_id: str) -> psutil.Process | None:
        """The kernel's process: the server's child whose command line names ``kernel-<id>.json``."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return None
        for child in children:
            try:
                if any(f"kernel-{kernel_id}.json" in arg for arg in child.cmdline()):
                    return child
            except psutil.Error:
                continue
        return None

    def leftovers(self) -> list[psutil.Process]:
        """Kernel or java processes still under the server."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        found = []
        for child in children:
            try:
                if "java" in child.name() or any(arg.startswith("kernel-") or "/kernel-" in arg for arg in child.cmdline()):
                    found.append(child)
            except psutil.Error:
                continue
        return found

    def stop(self) -> None:
        """POST /api/shutdown, then by PID: TERM, then KILL; the kernels it still ran go with it."""
        if self.process.poll() is not None:
            return
        under = [*java_processes_under(self.process.pid), *self.leftovers()]
        try:
            self.request("POST", "/api/shutdown", timeout=10)
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except (OSError, subprocess.TimeoutExpired):
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for process in wait_gone(under, timeout=10):
            process.kill()


async def run_over_websocket(server: JupyterServer, kernel_id: str, code: str, timeout: float) -> tuple[str, Any]:
    """Open the kernel's channels as a browser tab does, send ``code`` on shell, read until its
    execute_result and an ok execute_reply; return the result's text/plain and the still-open websocket
    (the caller closes it: that is the tab closing)."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    session = uuid.uuid4().hex
    url = f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels?session_id={session}"
    websocket = await asyncio.wait_for(websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {server.token}"})), timeout)
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "execute_request", "session": session, "username": "burst", "version": "5.3", "date": ""}
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
    await websocket.write_message(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell", "buffers": []}))
    result, replied, streams, deadline = None, False, [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            frame = await asyncio.wait_for(websocket.read_message(), max(0.1, deadline - time.monotonic()))
            if frame is None:
                raise RuntimeError(f"the websocket of kernel {kernel_id} closed before the reply")
            message = json.loads(frame)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, reply = message["header"]["msg_type"], message["content"]
            if kind == "execute_result":
                result = reply["data"]["text/plain"]
            elif kind == "stream":
                streams.append(reply["text"])
            elif kind == "error":  # with the cell's last output: a JVM's own error lands in its stream
                raise RuntimeError(f"kernel {kernel_id}: {reply['ename']}: {reply['evalue'].splitlines()[0]}\n{''.join(streams)[-1500:]}")
            elif kind == "execute_reply":
                if reply["status"] != "ok":
                    raise RuntimeError(f"kernel {kernel_id}: execute_reply {reply['status']}")
                replied = True
            if replied and result is not None:  # shell and iopub are separate streams: either may come first
                return result, websocket
    except BaseException:
        websocket.close()
        raise
    websocket.close()
    raise TimeoutError(f"kernel {kernel_id} gave no result within {timeout:.0f} s")


def count_in_notebook(server: JupyterServer, kernel_id: str, code: str = "spark.range(10).count()", timeout: float = 300) -> str:
    """Run ``code`` over a websocket that is closed afterwards; its text/plain result (for a thread)."""

    async def scenario() -> str:
        result, websocket = await run_over_websocket(server, kernel_id, code, timeout)
        websocket.close()
        return result

    return asyncio.run(scenario())
