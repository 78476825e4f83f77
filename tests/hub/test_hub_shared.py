"""The shared-host story under a real JupyterHub with the shared local Spark Connect mode
(``pyspark-kernel install --remote 'local[*]'``): each user's notebooks share one server JVM of their own.

One hub for the module (conftest.py); two local accounts, each with two notebooks opened through the
hub's proxy (story.py). Checked: Spark counts in each notebook; each user's two notebooks are clients
of ONE server JVM, run by that user's uid, listening on loopback only; the other user can read neither
that server's token nor its folder, and a client without the token (the other user's, with its own
server's token) is refused; each Spark UI link answers through the hub for its user only; stopping a
user's server from the hub leaves no JVM of that user behind (the server's idle time is 600 s here, so
only the stop can explain it).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from hub import story, userenv
from hub.harness import Hub, HubUser, java_processes_of

pytestmark = [pytest.mark.slow, pytest.mark.hub]

LOOPBACK = ("127.0.0.1", "::ffff:127.0.0.1", "::1")  # the JVM's IPv6 sockets name IPv4 loopback the mapped way
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"  # localserver.SERVER_CLASS
# Run as the other account with the venv copy's python: a Spark Connect client of URL argv[1], given no
# token unless the URL carries one. Prints "connected" or "refused: <error>".
CLIENT = """
import sys
from pyspark.sql import SparkSession
try:
    SparkSession.builder.remote(sys.argv[1]).getOrCreate().range(3).count()
except Exception as error:
    print("refused:", type(error).__name__, str(error)[:400].replace("\\n", " "))
else:
    print("connected")
"""


@pytest.fixture(scope="module")
def opened(hub: Hub, hub_users: list[HubUser], shared_kernelspec: str) -> Iterator[story.Outputs]:
    yield from story.open_and_count(hub, hub_users, shared_kernelspec)


def discovery_of(account: str) -> Path:
    """The discovery file (port, token, pid) of ``account``'s one server: pyspark's, in a folder of
    pyspark-kernel's under ``/tmp/spark-connect-<account>``; root reads it."""
    found = sorted(Path("/tmp", f"spark-connect-{account}").glob("pyspark-kernel-*/connect-local.json"))
    assert len(found) == 1, f"{account}'s server folders: {found}"
    return found[0]


def as_account(account: str, python: Path, *command: str) -> subprocess.CompletedProcess[str]:
    environ = ["env", "-i", "PATH=/usr/bin:/bin", f"LD_LIBRARY_PATH={userenv.library_path(python)}", "HOME=/"]
    return subprocess.run(["runuser", "-u", account, "--", *environ, *command], capture_output=True, text=True, timeout=120, cwd="/")


def test_each_user_counts_in_two_notebooks_through_the_hub(opened: story.Outputs) -> None:
    story.check_counts(opened)


def test_each_users_notebooks_share_one_server_jvm_of_their_own(hub_users: list[HubUser], opened: story.Outputs) -> None:
    for user in hub_users:
        servers = java_processes_of(user.name, SERVER_CLASS)
        others = [jvm for jvm in java_processes_of(user.name) if jvm not in servers]
        assert len(servers) == 1 and not others, f"{user.name}'s JVMs: servers {servers}, others {others}"
        named = {path: re.findall(r"shared local Connect server \(pid (\d+)", json.dumps(outputs)) for path, outputs in opened[user.name].items()}
        assert all(pids[:1] == [str(servers[0].pid)] for pids in named.values()), f"{user.name}'s session lines name {named}; their server is {servers[0].pid}"
        discovery = discovery_of(user.name)
        assert json.loads(discovery.read_text())["pid"] == servers[0].pid
        # Started once, at the first try: the two users' servers start at the same moment, and a port both
        # picked (pyspark's default 15002) would fail the second one's bind and cost its notebooks a restart.
        starts = sorted((discovery.parent / "logs").glob("*SparkConnectServer*.out*"))
        assert len(starts) == 1, f"{user.name}'s server was started {len(starts)} times: {[log.read_text()[-600:] for log in starts]}"
        listening = [c.laddr for c in servers[0].net_connections("tcp") if c.status == psutil.CONN_LISTEN]
        assert listening and all(address.ip in LOOPBACK for address in listening), f"{user.name}'s server listens on {listening}"


def test_one_users_server_is_unreachable_to_the_other(hub_users: list[HubUser], hub_python: Path, opened: story.Outputs) -> None:
    for user in hub_users:
        other = next(someone for someone in hub_users if someone is not user)
        discovery = discovery_of(user.name)
        server = json.loads(discovery.read_text())
        denied = as_account(other.name, hub_python, "/usr/bin/cat", str(discovery))
        assert denied.returncode != 0 and "Permission denied" in denied.stderr and server["token"] not in denied.stdout, denied
        listed = as_account(other.name, hub_python, "/usr/bin/ls", str(discovery.parent))
        assert listed.returncode != 0 and "Permission denied" in listed.stderr, listed
        own_token = json.loads(discovery_of(other.name).read_text())["token"]
        # "localhost", as pyspark's own URL: a token to another host would need TLS, which a local server has not.
        for label, url in (
            ("no token", f"sc://localhost:{server['port']}"),
            (f"{other.name}'s own token", f"sc://localhost:{server['port']}/;token={own_token}"),
        ):
            client = as_account(other.name, hub_python, str(hub_python), "-c", CLIENT, url)
            assert client.stdout.startswith("refused:"), f"{other.name} with {label} on {user.name}'s server: {client.stdout} {client.stderr[-800:]}"
            assert "UNAUTHENTICATED" in client.stdout or "token" in client.stdout.lower(), f"refused, but not for the token: {client.stdout}"


def test_each_spark_ui_link_answers_through_the_hub_for_its_user_only(hub: Hub, hub_users: list[HubUser], opened: story.Outputs) -> None:
    story.check_ui_links(hub, hub_users, opened)


def test_stopping_a_users_server_from_the_hub_leaves_no_jvm(hub: Hub, hub_users: list[HubUser], opened: story.Outputs) -> None:
    story.check_stop_leaves_no_jvm(hub, hub_users)
