"""Another account of the same machine against a kernel: refused by default, let in by an opted-out one.

The intruder is real: a second local account (``useradd``), running intruder.py under the system's
Python with ``runuser`` (the venv's Python lives under /root, which that account cannot enter). It
speaks Spark's own wire format and py4j's protocol to 127.0.0.1 only. The same probes against a kernel
whose kernelspec turns the protection off show that each probe gets in when nothing stops it: a UI
page, a message dispatched by the driver, the bytes of a cached block, so a refusal means something.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import (
    SYSTEM_PYTHON,
    KernelHarness,
    as_second_account,
    cli,
    free_port,
    install,
)
from jupyter_client.blocking import BlockingKernelClient

from reliability.server import JupyterServer

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

MARKER = "cached-by-the-owner-7f3a"
OPT_OUT = ("--conf", "spark.authenticate=false", "--conf", "spark.network.crypto.enabled=false", "--conf", "spark.ui.filters=")
# What the kernel's session tells about its ports, and a cached block holding MARKER.
EXPOSURE = f"""
import json
_rdd = sc.parallelize([{MARKER!r}], 1).cache(); _rdd.count()
json.dumps({{
    "ui": int(sc.uiWebUrl.rsplit(":", 1)[1]),
    "rpc": int(sc.getConf().get("spark.driver.port")),
    "blocks": sc._jsc.sc().statusTracker().getExecutorInfos()[0].port(),
    "block_id": f"rdd_{{_rdd.id()}}_0",
    "py4j": sc._gateway.gateway_parameters.port,
    "py4j_secret": sc._gateway.gateway_parameters.auth_token,
    "ui_key": sc.getConf().get("spark.org.apache.spark.ui.JWSFilter.param.secretKey", ""),
}})
"""


@pytest.fixture(scope="module")
def intruder(second_account: str) -> Iterator[Path]:
    """A copy of intruder.py the second local account can read; yields the script's path."""
    folder = Path(tempfile.mkdtemp(prefix="pyspark-intruder-"))
    folder.chmod(0o755)
    script = folder / "intruder.py"
    shutil.copy(Path(__file__).with_name("intruder.py"), script)
    script.chmod(0o644)
    yield script
    shutil.rmtree(folder)


def probe(script: Path, *args: object, as_intruder: bool = True) -> dict[str, str]:
    """intruder.py's verdict, run as the second account (or as the owner, ``as_intruder=False``)."""
    command = [SYSTEM_PYTHON, str(script), *map(str, args)]
    result = as_second_account(command, timeout=300) if as_intruder else subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def exposure(kernel: KernelHarness) -> dict:
    return json.loads(kernel.value(EXPOSURE).strip("'"))


@pytest.fixture(scope="module")
def opted_out(prefix: Path) -> Iterator[KernelHarness]:
    """A kernel whose kernelspec turns the protection off: the user's --conf outranks the defaults."""
    folder = install(prefix, "--name", "isolation-off", *OPT_OUT, "--replace")
    kernel = KernelHarness(folder.name)
    yield kernel
    kernel.shutdown()


def test_another_account_gets_into_a_kernel_that_opted_out(intruder: Path, opted_out: KernelHarness) -> None:
    ports = exposure(opted_out)
    assert probe(intruder, "ui", ports["ui"]) == {"outcome": "reached", "detail": "HTTP 200"}
    assert probe(intruder, "rpc", ports["rpc"])["outcome"] == "reached"
    stolen = probe(intruder, "blocks", ports["blocks"], ports["block_id"])
    assert stolen["outcome"] == "reached" and MARKER in stolen["detail"], stolen
    assert probe(intruder, "py4j", ports["py4j"])["outcome"] == "refused", "py4j keeps its secret even so"


def test_another_account_is_refused_by_a_default_kernel(intruder: Path, spark_kernel: KernelHarness) -> None:
    ports = exposure(spark_kernel)
    assert probe(intruder, "ui", ports["ui"]) == {"outcome": "refused", "detail": "HTTP 403"}
    assert probe(intruder, "rpc", ports["rpc"])["outcome"] == "refused"
    blocks = probe(intruder, "blocks", ports["blocks"], ports["block_id"])
    assert blocks["outcome"] == "refused" and MARKER not in blocks["detail"], blocks
    assert probe(intruder, "py4j", ports["py4j"])["outcome"] == "refused"


def test_the_owner_gets_in_with_the_kernels_secrets(intruder: Path, spark_kernel: KernelHarness) -> None:
    """The refusals above are the secrets at work, not broken probes: with them, the same probes pass."""
    from pyspark_kernel.kernel import uiprotect

    ports = exposure(spark_kernel)
    assert ports["ui_key"], "the UI's key is a system property of the JVM"
    assert probe(intruder, "ui", ports["ui"], uiprotect.sign(ports["ui_key"]), as_intruder=False) == {"outcome": "reached", "detail": "HTTP 200"}
    assert probe(intruder, "ui", ports["ui"], uiprotect.sign(uiprotect.new_key()))["detail"] == "HTTP 403", "a token of another key"
    assert probe(intruder, "py4j", ports["py4j"], ports["py4j_secret"], as_intruder=False) == {"outcome": "reached", "detail": "!ysroot"}


def test_no_secret_on_a_command_line_or_in_an_environment(spark_kernel: KernelHarness) -> None:
    """ps shows every account the command lines (and root the environments) of the kernel's processes."""
    key = exposure(spark_kernel)["ui_key"]
    kernel = psutil.Process(spark_kernel.pid)
    for process in [kernel, *kernel.children(recursive=True)]:
        try:
            seen = " ".join(process.cmdline()) + json.dumps(process.environ())
        except psutil.Error:  # a helper that has exited since (spark-submit's launcher leaves a zombie)
            continue
        assert key not in seen, f"the UI's key is visible in process {process.pid} ({process.name()})"
        assert "spark.authenticate.secret" not in seen and "_SPARK_AUTH_SECRET" not in seen


def test_status_says_what_is_protected(spark_kernel: KernelHarness) -> None:
    result = spark_kernel.run("%spark")
    text = "".join(output.get("text", "") for output in result["outputs"] if output["type"] == "stream")
    assert "from other local users: rpc authenticated and encrypted; ui protected (JWSFilter" in text, text
    assert "py4j secret per launch" in text


def test_check_reports_what_is_protected(prefix: Path, default_spec: Path, opted_out: KernelHarness) -> None:
    default = cli("check", default_spec.name, "--prefix", str(prefix))
    row = next(line for line in default.stdout.splitlines() if "isolation" in line)
    assert row.startswith("OK") and "RPC and block transfers authenticated and encrypted" in row and "UI behind JWSFilter" in row, row
    off = cli("check", "isolation-off", "--prefix", str(prefix))
    row = next(line for line in off.stdout.splitlines() if "isolation" in line)
    assert row.startswith("WARN") and "OPEN" in row, row


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect to Jupyter's login page is an answer of its own here


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=60) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


@pytest.fixture(scope="module")
def jupyter_server(isolated_jupyter: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A real Jupyter server of the owner with pyspark-kernel's extension enabled, as pip's install of
    jupyter-config/ enables it; yields its URL and the headers of its authenticated user."""
    config = isolated_jupyter / "isolation_server_config.json"
    config.write_text((Path(__file__).parents[2] / "pyspark_kernel" / "etc" / "pyspark_kernel.json").read_text())
    server = JupyterServer(isolated_jupyter / "isolation-root", args=(f"--config={config}",))
    try:
        yield f"http://127.0.0.1:{server.port}", server.headers
    finally:
        server.stop()


def notebook_kernel(base: str, headers: dict[str, str], kernel_name: str, runtime: Path, path: str = "ui.ipynb") -> tuple[str, BlockingKernelClient]:
    """A notebook's kernel started by the server (POST /api/sessions), and a client on its connection file."""
    body = json.dumps({"path": path, "type": "notebook", "name": path, "kernel": {"name": kernel_name}}).encode()
    session = json.load(urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions", data=body, headers=headers, method="POST"), timeout=120))
    # The server has started the kernel when it answers; the kernel's own kernel_info reply says it is up
    # (the server's execution_state can stay "starting" until a browser's websocket connects).
    client = BlockingKernelClient(connection_file=str(runtime / f"kernel-{session['kernel']['id']}.json"))
    client.load_connection_file()
    client.start_channels()
    deadline = time.monotonic() + 120  # a loaded machine starts it slowly
    while True:
        try:  # a client without the kernel's manager judges it alive by its heartbeat, which starts a moment late
            client.wait_for_ready(timeout=max(1, deadline - time.monotonic()))
            break
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    return session["id"], client


def run_text(client: BlockingKernelClient, code: str) -> str:
    outputs: list[str] = []
    reply = client.execute_interactive(code, timeout=300, output_hook=lambda message: outputs.append(message["content"].get("text", "")))
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(outputs)


def ui_link(client: BlockingKernelClient) -> str:
    """The Spark UI link that %spark shows in the notebook, once the session is up (a cell that touches
    ``spark`` waits for it; %spark alone reports a session still starting)."""
    run_text(client, "_ = spark.version")
    return next(line for line in run_text(client, "%spark").splitlines() if line.startswith("Spark UI:")).split(": ", 1)[1]


def end_session(base: str, headers: dict[str, str], session_id: str, client: BlockingKernelClient) -> None:
    client.stop_channels()
    urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions/{session_id}", headers=headers, method="DELETE"), timeout=60)


def test_the_owners_jupyter_opens_the_ui_link_and_only_it(
    intruder: Path, default_spec: Path, isolated_jupyter: Path, jupyter_server: tuple[str, dict[str, str]]
) -> None:
    base, headers = jupyter_server
    session_id, client = notebook_kernel(base, headers, default_spec.name, isolated_jupyter / "runtime")
    try:
        ui_port = int(run_text(client, "print(sc.uiWebUrl.rsplit(':', 1)[1])").strip())
        link = ui_link(client)
        key = link.split("/")[2]
        assert link == f"/pyspark-ui/{key}/jobs/" and not key.isdigit(), "the notebook links the UI through the server's route, by the kernel's key"
        status, page = http_get(base + link, headers)
        assert status == 200 and "Spark Jobs" in page, (status, page[:300])
        assert f'href="/pyspark-ui/{key}/' in page, "the UI's own links go through the route too (proxyBase)"
        assert http_get(base + link)[0] in (302, 403), "the route is behind the Jupyter server's login"
        assert probe(intruder, "ui", ui_port)["detail"] == "HTTP 403", "the port itself still refuses other accounts"
        route_file = isolated_jupyter / "runtime" / f"pyspark-ui-{key}.json"
        assert route_file.stat().st_mode & 0o077 == 0, "the route file (with the token) is the owner's alone"
        assert http_get(f"{base}/pyspark-ui/{ui_port}/jobs/", headers)[0] == 200, "a link by port (older versions) still works"
        assert http_get(f"{base}/pyspark-ui/{free_port()}/jobs/", headers)[0] == 404, "a port without a kernel's route file is not proxied"
    finally:
        end_session(base, headers, session_id, client)


def test_a_port_that_another_account_took_from_a_killed_jvm_is_never_served(
    second_account: str, default_spec: Path, isolated_jupyter: Path, jupyter_server: tuple[str, dict[str, str]]
) -> None:
    """The JVM alone dies (as when the OOM killer picks it; the kernel lives on) and another local account
    binds the freed UI port at once: the route answers 502 with what happened, never that account's page
    (which Jupyter would serve under its own origin, with the owner's cookies)."""
    from server.test_uiproxy import MARKER, start_marker_server, stop_marker_server

    base, headers = jupyter_server
    session_id, client = notebook_kernel(base, headers, default_spec.name, isolated_jupyter / "runtime")
    holder = None
    try:
        link = ui_link(client)
        ui_port = int(run_text(client, "print(sc.uiWebUrl.rsplit(':', 1)[1])").strip())
        jvm = psutil.Process(int(run_text(client, "print(sc._jvm.java.lang.ProcessHandle.current().pid())").strip()))
        assert http_get(base + link, headers)[0] == 200
        jvm.kill()
        deadline = time.monotonic() + 60  # gone, or a zombie its kernel has not reaped: no sockets either way
        while time.monotonic() < deadline and psutil.pid_exists(jvm.pid) and jvm.status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.2)
        holder = start_marker_server(["runuser", "-u", second_account, "--", SYSTEM_PYTHON], ui_port)
        status, page = http_get(base + link, headers)
        assert MARKER not in page, "Jupyter served another account's page under its own origin"
        assert status == 502 and "its JVM exited" in page and "%spark restart" in page, (status, page[:500])
    finally:
        if holder is not None:
            stop_marker_server(holder)
        end_session(base, headers, session_id, client)


def app_id_through(base: str, headers: dict[str, str], link: str) -> str:
    """The id of the Spark application whose UI ``link`` reaches (its REST API, through the route)."""
    status, text = http_get(base + link.replace("/jobs/", "/api/v1/applications"), headers)
    assert status == 200, (status, text[:300])
    return json.loads(text)[0]["id"]


def test_the_ui_link_reaches_the_port_spark_bound_when_the_chosen_one_was_taken(
    prefix: Path, isolated_jupyter: Path, jupyter_server: tuple[str, dict[str, str]]
) -> None:
    """The port chosen for the UI was taken before Spark bound it, here by this test's socket; in life by
    another user's kernel or any program. Spark binds a later port: the link and the UI's own links (its
    proxyBase) name the kernel's route key, which leads to the port Spark bound, and the holder of the
    chosen port is never sent a request, so never the token."""
    base, headers = jupyter_server
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        holder.settimeout(0)
        chosen = holder.getsockname()[1]
        folder = install(prefix, "--name", "ui-route-taken", "--conf", f"spark.ui.port={chosen}", "--replace")
        session_id, client = notebook_kernel(base, headers, folder.name, isolated_jupyter / "runtime")
        try:
            bound = int(run_text(client, "print(sc.uiWebUrl.rsplit(':', 1)[1])").strip())
            assert bound != chosen, "Spark bound a port this test holds"
            link = ui_link(client)
            key = link.split("/")[2]
            assert run_text(client, "print(sc.getConf().get('spark.ui.proxyBase'))").strip() == f"/pyspark-ui/{key}"
            status, page = http_get(base + link, headers)
            assert status == 200 and "Spark Jobs" in page, (status, page[:300])
            assert f'href="/pyspark-ui/{key}/' in page, "the UI's own links name the kernel's route"
            status, page = http_get(f"{base}/pyspark-ui/{key}/environment/", headers)
            assert status == 200 and "Environment" in page, "a link inside the UI is followed to the bound port"
            assert app_id_through(base, headers, link) == run_text(client, "print(sc.applicationId)").strip()
            with pytest.raises(BlockingIOError):
                holder.accept()  # nothing was forwarded to the chosen port's holder
        finally:
            end_session(base, headers, session_id, client)


def test_kernels_of_two_servers_that_chose_one_port_each_reach_their_own_ui(
    prefix: Path, isolated_jupyter: Path, jupyter_server: tuple[str, dict[str, str]]
) -> None:
    """Two Jupyter servers of one user (one runtime folder), a kernel in each, both choosing the same UI
    port: the second kernel's Spark binds the next port. Each notebook's link reaches its own kernel's UI."""
    base, headers = jupyter_server
    config = isolated_jupyter / "isolation_server_config.json"
    other = JupyterServer(isolated_jupyter / "isolation-root-2", args=(f"--config={config}",))
    port = free_port()
    folder = install(prefix, "--name", "ui-route-same-port", "--conf", f"spark.ui.port={port}", "--replace")
    sessions = []
    try:
        for server_base, server_headers in ((base, headers), (f"http://127.0.0.1:{other.port}", other.headers)):
            session_id, client = notebook_kernel(server_base, server_headers, folder.name, isolated_jupyter / "runtime")
            sessions.append((server_base, server_headers, session_id, client))
            run_text(client, "spark.range(3).count()")  # the first is up before the second starts
        bound = [int(run_text(client, "print(sc.uiWebUrl.rsplit(':', 1)[1])").strip()) for _, _, _, client in sessions]
        assert bound[0] == port and bound[1] != port, bound
        for server_base, server_headers, _, client in sessions:
            link = ui_link(client)
            assert app_id_through(server_base, server_headers, link) == run_text(client, "print(sc.applicationId)").strip(), link
    finally:
        for session in sessions:
            end_session(*session)
        other.stop()


def test_a_spark_35_kernel_says_its_ui_is_open_and_still_guards_rpc(intruder: Path, prefix: Path, spark_359_home: Path) -> None:
    """Spark 3.5 has no JWSFilter: its UI is open to other accounts, and the kernel says so plainly."""
    folder = install(prefix, "--name", "isolation359", "--spark-home", str(spark_359_home), "--replace")
    kernel = KernelHarness(folder.name)
    try:
        first = kernel.run("spark.version")
        banner = next(output["data"]["text/plain"] for output in first["outputs"] if output["type"] == "display_data")
        assert "(open to other local users: Spark 3.5.9 has no UI auth filter" in banner, banner
        ports = exposure(kernel)
        assert probe(intruder, "ui", ports["ui"])["detail"] == "HTTP 200", "what the kernel says is so"
        assert probe(intruder, "rpc", ports["rpc"])["outcome"] == "refused"
        blocks = probe(intruder, "blocks", ports["blocks"], ports["block_id"])
        assert blocks["outcome"] == "refused" and MARKER not in blocks["detail"], blocks
    finally:
        kernel.shutdown()
    row = next(line for line in cli("check", folder.name, "--prefix", str(prefix)).stdout.splitlines() if "isolation" in line)
    assert row.startswith("WARN") and "UI OPEN: Spark 3.5.9 has no JWSFilter" in row, row
