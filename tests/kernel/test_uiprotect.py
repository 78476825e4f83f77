"""uiprotect.py's decisions without a JVM: which launches get protected, what wins, the token file.

The JVM side (JWSFilter accepting ``sign``'s tokens, other accounts refused) is in
tests/reliability/test_isolation.py.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pyspark_kernel import isolation, submitargs, uiroute
from pyspark_kernel.kernel import settings, uiprotect


@pytest.mark.parametrize("master", ["local", "local[*]", "local[4]", "local[2, 3]", "local[*,1]"])
def test_local_masters_get_rpc_auth_and_encryption(master: str) -> None:
    assert isolation.rpc_defaults(master) == {"spark.authenticate": "true", "spark.network.crypto.enabled": "true"}


@pytest.mark.parametrize("master", ["spark://m:7077", "yarn", "k8s://https://k:6443", "local-cluster[2,1,1024]"])
def test_other_masters_are_left_to_their_admins(master: str) -> None:
    """Spark makes the secret itself only for these local masters; others would fail without one."""
    assert isolation.rpc_defaults(master) == {}


def launch_conf(submit_args: str) -> dict[str, str]:
    return submitargs.parse(settings.SessionSettings(submit_args=submit_args).launch_submit_args({})).conf


def test_the_defaults_ride_on_the_launch_and_the_users_conf_wins() -> None:
    conf = launch_conf("--master local[2] pyspark-shell")
    assert conf["spark.authenticate"] == "true" and conf["spark.network.crypto.enabled"] == "true"
    opted_out = launch_conf("--master local[2] --conf spark.authenticate=false --conf spark.network.crypto.enabled=false pyspark-shell")
    assert opted_out["spark.authenticate"] == "false" and opted_out["spark.network.crypto.enabled"] == "false"
    assert not any("secret" in key.lower() for key in conf), "no secret on spark-submit's command line"


def test_the_ui_filter_is_wanted_for_loopback_local_mode_only() -> None:
    local = "--master local[*] pyspark-shell"
    assert isolation.ui_filter_wanted(local, {})
    assert isolation.ui_filter_wanted(local, {"SPARK_LOCAL_IP": "127.0.0.1"})
    assert not isolation.ui_filter_wanted(local, {"SPARK_LOCAL_IP": "0.0.0.0"}), "exposed on purpose (the Docker image)"
    assert not isolation.ui_filter_wanted("--master local[*] --conf spark.ui.filters= pyspark-shell", {}), "the user's opt-out"
    assert not isolation.ui_filter_wanted("--master spark://m:7077 pyspark-shell", {})


def test_the_servers_route_comes_first_for_a_protected_ui_only() -> None:
    route = {settings.UI_ROUTE_VAR: "/base/pyspark-ui/", "PYSPARK_KERNEL_UI_PROXY": "/user/a/proxy"}
    assert settings.ui_proxy_prefix(route) == "/base/pyspark-ui/"
    assert settings.ui_proxy_prefix({**route, "SPARK_LOCAL_IP": "0.0.0.0"}) == "/user/a/proxy/", "an open UI keeps its proxy"
    assert settings.ui_proxy_prefix({settings.UI_ROUTE_VAR: "/base/pyspark-ui/", "SPARK_LOCAL_IP": "0.0.0.0"}) is None


def test_sign_makes_an_hs256_jws_of_the_key() -> None:
    key = uiprotect.new_key()
    raw_key = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw_key) == 32
    header, payload, signature = uiprotect.sign(key).split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256"}
    expected = hmac.new(raw_key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)) == expected


def test_the_route_file_is_private_and_ignored_once_its_kernel_is_gone(isolated_jupyter: Path) -> None:
    route = uiroute.Route(uiroute.new_key(), "a.b.c", jvm_pid=os.getpid(), jvm_started=0.0, uid=os.getuid(), port=4999, pid=os.getpid())
    path = uiroute.write_route(route)
    try:
        assert path.parent == uiroute.runtime_dir() and path.stat().st_mode & 0o777 == 0o600
        assert uiroute.read_route(route.key) == route
        assert uiroute.read_route("4999") == route and uiprotect.read_token(4999) == "a.b.c", "a link by port finds the UI that bound it"
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
        uiroute.write_route(dataclasses.replace(route, pid=int(dead)))
        assert uiroute.read_route(route.key) is None, "a killed kernel's file must not send its token anywhere"
        assert uiprotect.read_token(4999) is None and uiroute.read_route(uiroute.new_key()) is None
    finally:
        path.unlink(missing_ok=True)


def test_facts_say_plainly_what_is_open() -> None:
    protected = uiprotect.facts(
        {"spark.authenticate": "true", "spark.network.crypto.enabled": "true", isolation.UI_FILTERS_KEY: isolation.UI_FILTER}.get, "4.3.0", {}
    )
    assert protected == {"rpc": "authenticated and encrypted", "ui": "protected (JWSFilter, a key per JVM)", "py4j": "secret per launch"}
    old = uiprotect.facts({"spark.authenticate": "true"}.get, "3.5.9", {})
    assert old["ui"].startswith("OPEN to other local users: Spark 3.5.9 has no UI auth filter")
    assert uiprotect.ui_note(old, routed=True) == "open to other local users: Spark 3.5.9 has no UI auth filter (JWSFilter needs Spark 4.0)"
    assert uiprotect.ui_note(protected, routed=True) is None


def test_the_route_follows_the_port_the_ui_bound(isolated_jupyter: Path) -> None:
    """protect_ui wrote the route before Spark bound any port: the route's key (the UI's proxyBase names
    it) leads to whichever port Spark then bound, and to a later SparkContext's port."""
    route = uiroute.Route(uiprotect.route_key(), "a.b.c", jvm_pid=os.getpid(), jvm_started=0.0, uid=os.getuid(), port=None, pid=os.getpid())
    uiprotect.publish(route)
    path = uiroute.route_path(route.key)
    try:
        assert uiroute.read_route(route.key).port is None, "not forwarded anywhere before Spark has bound its UI"
        uiprotect.token_follows_ui("http://127.0.0.1:5001/")
        assert uiroute.read_route(route.key).port == 5001
        uiprotect.token_follows_ui("http://127.0.0.1:5003")  # spark.stop(), a new session on another port
        assert uiroute.read_route(route.key) == dataclasses.replace(route, port=5003)
        uiprotect.token_follows_ui(None)  # no UI (spark.ui.enabled=false): nothing to do
        assert uiroute.read_route(route.key).port == 5003
    finally:
        uiprotect.remove_routes()
        uiprotect._issued.clear()
    assert not path.exists(), "the files go with the kernel"


def test_a_route_file_another_process_rewrote_is_left_alone(isolated_jupyter: Path) -> None:
    route = uiroute.Route(uiprotect.route_key(), "a.b.c", jvm_pid=os.getpid(), jvm_started=0.0, uid=os.getuid(), port=4997, pid=os.getpid())
    uiprotect.publish(route)
    path = uiroute.route_path(route.key)
    try:
        path.write_text(json.dumps({**json.loads(path.read_text()), "pid": os.getppid()}))
        uiprotect.remove_routes()
        assert path.exists(), "another process's file is not this kernel's to remove"
    finally:
        uiprotect._issued.clear()
        path.unlink(missing_ok=True)


def test_route_keys_are_never_ports() -> None:
    keys = {uiroute.new_key() for _ in range(200)}
    assert len(keys) == 200 and not any(key.isdigit() for key in keys)
    assert all(re.fullmatch(r"[0-9a-z]+", key) for key in keys), "the server's route takes [0-9a-z]+"


def test_the_servers_route_is_keyed_by_the_kernel_not_by_a_port(isolated_jupyter: Path) -> None:
    """proxyBase and the link name this kernel's route key, which no other program can take before Spark
    binds its UI (a port can be: Spark then binds another, and a port-keyed link misleads)."""
    environ = {settings.UI_ROUTE_VAR: "/base/pyspark-ui/", "PYSPARK_SUBMIT_ARGS": "--master local[2] pyspark-shell"}
    made = settings.SessionSettings.from_environ(environ)
    try:
        key = uiprotect.route_key()
        assert made.defaults["spark.ui.proxyBase"] == f"/base/pyspark-ui/{key}"
        assert made.ui_link("http://127.0.0.1:4061") == f"/base/pyspark-ui/{key}/jobs/"
    finally:
        assert made.ui_port is not None
        made.ui_port.release()
    generic = settings.SessionSettings.from_environ({**environ, settings.UI_ROUTE_VAR: "", "PYSPARK_KERNEL_UI_PROXY": "/user/a/proxy/"})
    try:
        assert generic.ui_link("http://127.0.0.1:4061") == "/user/a/proxy/4061/jobs/", "a generic proxy's route is by port"
    finally:
        assert generic.ui_port is not None
        generic.ui_port.release()
