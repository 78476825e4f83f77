"""uiauth.py's decisions without a JVM: which launches get protected, what wins, the token file.

The JVM side (JWSFilter accepting ``sign``'s tokens, other accounts refused) is in
tests/reliability/test_isolation.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyspark_kernel import settings, submitargs, uiauth


@pytest.mark.parametrize("master", ["local", "local[*]", "local[4]", "local[2, 3]", "local[*,1]"])
def test_local_masters_get_rpc_auth_and_encryption(master: str) -> None:
    assert uiauth.rpc_defaults(master) == {"spark.authenticate": "true", "spark.network.crypto.enabled": "true"}


@pytest.mark.parametrize("master", ["spark://m:7077", "yarn", "k8s://https://k:6443", "local-cluster[2,1,1024]"])
def test_other_masters_are_left_to_their_admins(master: str) -> None:
    """Spark makes the secret itself only for these local masters; others would fail without one."""
    assert uiauth.rpc_defaults(master) == {}


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
    assert uiauth.ui_filter_wanted(local, {})
    assert uiauth.ui_filter_wanted(local, {"SPARK_LOCAL_IP": "127.0.0.1"})
    assert not uiauth.ui_filter_wanted(local, {"SPARK_LOCAL_IP": "0.0.0.0"}), "exposed on purpose (the Docker image)"
    assert not uiauth.ui_filter_wanted("--master local[*] --conf spark.ui.filters= pyspark-shell", {}), "the user's opt-out"
    assert not uiauth.ui_filter_wanted("--master spark://m:7077 pyspark-shell", {})


def test_the_servers_route_comes_first_for_a_protected_ui_only() -> None:
    route = {settings.UI_ROUTE_VAR: "/base/pyspark-ui/", "PYSPARK_KERNEL_UI_PROXY": "/user/a/proxy"}
    assert settings.ui_proxy_prefix(route) == "/base/pyspark-ui/"
    assert settings.ui_proxy_prefix({**route, "SPARK_LOCAL_IP": "0.0.0.0"}) == "/user/a/proxy/", "an open UI keeps its proxy"
    assert settings.ui_proxy_prefix({settings.UI_ROUTE_VAR: "/base/pyspark-ui/", "SPARK_LOCAL_IP": "0.0.0.0"}) is None


def test_sign_makes_an_hs256_jws_of_the_key() -> None:
    key = uiauth.new_key()
    raw_key = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw_key) == 32
    header, payload, signature = uiauth.sign(key).split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256"}
    expected = hmac.new(raw_key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)) == expected


def test_the_token_file_is_private_and_ignored_once_its_kernel_is_gone(isolated_jupyter: Path) -> None:
    path = uiauth.write_token(4999, "a.b.c")
    try:
        assert path.parent == uiauth.runtime_dir() and path.stat().st_mode & 0o777 == 0o600
        assert uiauth.read_token(4999) == "a.b.c"
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
        path.write_text(json.dumps({"port": 4999, "token": "a.b.c", "pid": int(dead)}))
        assert uiauth.read_token(4999) is None, "a killed kernel's file must not send its token anywhere"
        assert uiauth.read_token(5000) is None
    finally:
        path.unlink(missing_ok=True)
        uiauth._written.discard(path)


def test_facts_say_plainly_what_is_open() -> None:
    protected = uiauth.facts({"spark.authenticate": "true", "spark.network.crypto.enabled": "true", uiauth.UI_FILTERS_KEY: uiauth.UI_FILTER}.get, "4.3.0", {})
    assert protected == {"rpc": "authenticated and encrypted", "ui": "protected (JWSFilter, a key per JVM)", "py4j": "secret per launch"}
    old = uiauth.facts({"spark.authenticate": "true"}.get, "3.5.9", {})
    assert old["ui"].startswith("OPEN to other local users: Spark 3.5.9 has no UI auth filter")
    assert uiauth.ui_note(old, routed=True) == "open to other local users: Spark 3.5.9 has no UI auth filter (JWSFilter needs Spark 4.0)"
    assert uiauth.ui_note(protected, routed=True) is None


def test_the_chosen_ports_route_follows_the_port_the_ui_bound(isolated_jupyter: Path) -> None:
    """protect_ui wrote the file for the chosen port; Spark bound a later one (the chosen was taken): the
    bound port gets a file, and the chosen port's (the UI's proxyBase names it) forwards there, so its
    holder is never sent the token. A later SparkContext moves every route to its own port."""
    chosen = uiauth.write_token(4998, "a.b.c")
    uiauth._issued.update(token="a.b.c", port=4998)
    try:
        uiauth.token_follows_ui("http://127.0.0.1:4998")  # bound where chosen: nothing moves
        assert uiauth.read_route(4998) == (4998, "a.b.c")
        uiauth.token_follows_ui("http://127.0.0.1:5001/")
        assert uiauth.read_route(5001) == (5001, "a.b.c")
        assert uiauth.read_route(4998) == (5001, "a.b.c"), "the chosen port's route must lead to the bound UI"
        uiauth.token_follows_ui("http://127.0.0.1:5003")  # spark.stop(), a new session on another port
        assert [uiauth.read_route(port) for port in (4998, 5001, 5003)] == [(5003, "a.b.c")] * 3
        uiauth.token_follows_ui(None)  # no UI (spark.ui.enabled=false): nothing to do
        assert uiauth.read_route(4998) == (5003, "a.b.c")
    finally:
        uiauth.remove_tokens()
        uiauth._issued.clear()
    assert not chosen.exists(), "the files go with the kernel"


def test_a_route_another_kernel_took_over_is_left_alone(isolated_jupyter: Path) -> None:
    """Another live kernel of this user rewrote the chosen port's file (it bound that port): it keeps it."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        path = uiauth.write_token(4997, "a.b.c")
        uiauth._issued.update(token="a.b.c", port=4997)
        path.write_text(json.dumps({"port": 4997, "target": 4997, "token": "other", "pid": other.pid}))
        uiauth.token_follows_ui("http://127.0.0.1:4999")
        assert uiauth.read_route(4997) == (4997, "other") and uiauth.read_route(4999) == (4999, "a.b.c")
        uiauth.remove_tokens()
        assert path.exists(), "another kernel's file is not this kernel's to remove"
    finally:
        other.kill()
        other.wait()
        uiauth.remove_tokens()
        uiauth._issued.clear()
        uiauth.token_path(4997).unlink(missing_ok=True)
