"""The Spark UI route of a real Jupyter server (server/uiproxy.py), without a JVM: what it forwards and refuses.

The "UI" here is a real HTTP server on 127.0.0.1, in this test process, and the route file names this
process as its JVM: the server checks the listening socket with psutil exactly as for a Spark JVM. The
same route against a port held by another process must answer 502 and never that process's page.
tests/reliability/test_isolation.py does the same with a real kernel, a killed JVM and a second account.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import psutil
import pytest
from conftest import REPO, free_port
from reliability.server import JupyterServer

from pyspark_kernel import uiroute

MARKER = "served-by-another-process-5c2e"
# A page server anyone can run with a plain python3: prints "ready" once it listens on 127.0.0.1:PORT,
# answers every GET with MARKER and a cookie, and ends by itself after SECONDS.
MARKER_SERVER = f"""
import http.server, sys, time
class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html><body>{MARKER}</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Set-Cookie", "planted=1; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
deadline = time.monotonic() + float(sys.argv[2])
while True:  # a port just freed may be held a minute by its connections in TIME_WAIT
    try:
        server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Page)
        break
    except OSError:
        if time.monotonic() > deadline - 30:
            raise
        time.sleep(0.5)
server.timeout = 0.5
print("ready", flush=True)
while time.monotonic() < deadline:
    server.handle_request()
"""


def start_marker_server(command: list[str], port: int, seconds: float = 180) -> subprocess.Popen[str]:
    """``command`` (a python3, maybe run as another account) serving MARKER on ``port``, once it listens."""
    process = subprocess.Popen([*command, "-c", MARKER_SERVER, str(port), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready", "the marker server did not start"
    return process


def stop_marker_server(process: subprocess.Popen[str]) -> None:
    """Stop it by pid: the server first (under runuser, a child of the process started), then the process."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for child in children:
        child.kill()
    process.kill()
    process.wait(30)
    psutil.wait_procs(children, timeout=30)


@pytest.fixture(scope="module")
def server(isolated_jupyter: Path) -> Iterator[JupyterServer]:
    """A real Jupyter server with pyspark-kernel's extension enabled, as pip's install enables it."""
    config = isolated_jupyter / "serverext_config.json"
    config.write_text((REPO / "pyspark_kernel" / "etc" / "pyspark_kernel.json").read_text())
    jupyter = JupyterServer(isolated_jupyter / "serverext-root", args=(f"--config={config}",))
    yield jupyter
    jupyter.stop()


class FakeUI(http.server.BaseHTTPRequestHandler):
    """A page with a cookie of its own; remembers the Authorization header it was sent."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        FakeUI.seen.append(self.headers.get("Authorization", ""))
        body = b"<html><script>document.title='ui'</script>Spark Jobs</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html;charset=utf-8")
        self.send_header("Set-Cookie", "ui-cookie=1; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def own_ui() -> Iterator[uiroute.Route]:
    """A UI served by this process, and the route file that names this process as its JVM."""
    ui = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeUI)
    thread = threading.Thread(target=ui.serve_forever, daemon=True)
    thread.start()
    me = psutil.Process()
    route = uiroute.Route(uiroute.new_key(), "t.o.k", os.getpid(), me.create_time(), os.getuid(), ui.server_address[1], os.getpid())
    path = uiroute.write_route(route)
    try:
        yield route
    finally:
        ui.shutdown()
        ui.server_close()
        path.unlink(missing_ok=True)


def get(server: JupyterServer, path: str) -> tuple[int, dict[str, str], str]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request("GET", path, headers={"Authorization": f"token {server.token}"})
        response = connection.getresponse()
        return response.status, {name.lower(): value for name, value in response.getheaders()}, response.read().decode(errors="replace")
    finally:
        connection.close()


def test_the_route_forwards_with_the_token_and_guards_jupyters_origin(server: JupyterServer, own_ui: uiroute.Route) -> None:
    status, headers, body = get(server, f"/pyspark-ui/{own_ui.key}/jobs/")
    assert status == 200 and "Spark Jobs" in body, (status, body[:300])
    assert FakeUI.seen[-1] == "Bearer t.o.k"
    policy = headers["content-security-policy"]
    assert f"connect-src 127.0.0.1:{server.port}/pyspark-ui/{own_ui.key}/" in policy, "the page fetches from its own route only"
    for directive in (
        "frame-src 'none'",
        "worker-src 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        f"form-action 127.0.0.1:{server.port}/pyspark-ui/{own_ui.key}/",
    ):
        assert directive in policy, policy
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["x-content-type-options"] == "nosniff"
    assert "ui-cookie" not in headers.get("set-cookie", ""), "a cookie of the UI would be set on Jupyter's origin"
    assert get(server, f"/pyspark-ui/{own_ui.port}/jobs/")[0] == 200, "a link by port (older versions) reaches the UI that bound it"


def test_a_port_another_process_listens_on_is_never_forwarded_to(server: JupyterServer, own_ui: uiroute.Route) -> None:
    """The route's JVM no longer listens on its port, which another process now holds: 502, never its page."""
    port = free_port()
    taken = uiroute.Route(own_ui.key, own_ui.token, own_ui.jvm_pid, own_ui.jvm_started, own_ui.uid, port, own_ui.pid)
    uiroute.write_route(taken)
    holder = start_marker_server([sys.executable], port)
    try:
        status, headers, body = get(server, f"/pyspark-ui/{own_ui.key}/jobs/")
        assert status == 502 and "no longer listens on port" in body, (status, body[:500])
        assert MARKER not in body and "planted" not in headers.get("set-cookie", "")
    finally:
        stop_marker_server(holder)


def test_a_route_whose_jvm_is_gone_answers_502_with_what_to_do(server: JupyterServer, own_ui: uiroute.Route) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead = uiroute.Route(own_ui.key, own_ui.token, int(gone.stdout), own_ui.jvm_started, own_ui.uid, own_ui.port, own_ui.pid)
    uiroute.write_route(dead)
    status, _, body = get(server, f"/pyspark-ui/{own_ui.key}/jobs/")
    assert status == 502 and "its JVM exited" in body and "%spark restart" in body, (status, body[:500])
    reused = uiroute.Route(own_ui.key, own_ui.token, own_ui.jvm_pid, own_ui.jvm_started - 3600, own_ui.uid, own_ui.port, own_ui.pid)
    uiroute.write_route(reused)
    assert get(server, f"/pyspark-ui/{own_ui.key}/jobs/")[0] == 502, "a pid now naming another process (started later) is not the JVM"


def test_a_route_before_spark_bound_its_ui_says_so(server: JupyterServer, own_ui: uiroute.Route) -> None:
    starting = uiroute.Route(own_ui.key, own_ui.token, own_ui.jvm_pid, own_ui.jvm_started, own_ui.uid, None, own_ui.pid)
    uiroute.write_route(starting)
    status, _, body = get(server, f"/pyspark-ui/{own_ui.key}/jobs/")
    assert status == 503 and "not up yet" in body, (status, body[:300])
    assert get(server, f"/pyspark-ui/{uiroute.new_key()}/jobs/")[0] == 404, "a key without a route file is not proxied"
