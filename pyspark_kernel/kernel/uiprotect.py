"""The Spark UI's key, made in the kernel for each JVM, and the route file that lets its owner in.

The UI of a local-mode JVM sits behind Spark's ``org.apache.spark.ui.JWSFilter`` (Spark >= 4.0; when,
isolation.py) with a key made here. The key is a secret, so it never goes on a command line (``ps``
shows spark-submit's) nor into the environment: right after the JVM is launched, and before any
SparkConf exists, it is set as a JVM system property over py4j, so every SparkConf of that JVM (the
kernel's session, a user's builder after ``spark.stop()``) carries it. The owner's browser gets in
through the Jupyter server (server/uiproxy.py), which reads a token signed with that key from this
kernel's route file (uiroute.py: mode 0600, in the user's own runtime folder, naming the JVM and its port).

Nothing here imports Spark; the server extension imports uiroute.py, not this module.
"""

from __future__ import annotations

import atexit
import base64
import dataclasses
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pyspark_kernel import uiroute
from pyspark_kernel.isolation import (
    UI_FILTER,
    UI_FILTERS_KEY,
    exposed_on_purpose,
    ui_filter_wanted,
)
from pyspark_kernel.uiroute import read_token  # noqa: F401 (the owner's way to a UI's port, as tests reach it)

UI_KEY_CONF = f"spark.{UI_FILTER}.param.secretKey"

_written: set[Path] = set()  # the route files of this process, removed at its exit
_issued: dict[str, Any] = {}  # this process's route key, and the route of its current JVM


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key() -> str:
    """A fresh HS256 key (256 bits, the least jjwt accepts for it), base64url as JWSFilter reads it."""
    return b64url(secrets.token_bytes(32))


def sign(key: str, subject: str = "pyspark-kernel") -> str:
    """A compact HS256 JWS that JWSFilter accepts for ``key``: it checks the signature, not the claims."""
    padded = key + "=" * (-len(key) % 4)
    signing_input = f"{b64url(json.dumps({'alg': 'HS256'}).encode())}.{b64url(json.dumps({'sub': subject}).encode())}"
    signature = hmac.new(base64.urlsafe_b64decode(padded), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def has_class(jvm: Any, name: str) -> bool:
    try:
        jvm.java.lang.Class.forName(name)
    except Exception:
        return False
    return True


def protect_ui(jvm: Any, submit_args: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Put the UI of the JVM behind ``jvm`` (a py4j view, before its first SparkConf), launched with
    ``submit_args``, behind JWSFilter with a new key; returns the token for that key, or None when the
    UI stays as it was. The route file (uiroute.py) then names this JVM; its port follows once Spark
    has bound one (``token_follows_ui``).

    It stays as it was when ``ui_filter_wanted`` says no, when the launch's conf already names
    ``spark.ui.filters`` (``%spark conf``; an empty value too: the user's conf outranks this default)
    or when this Spark has no JWSFilter (3.5).
    """
    if not ui_filter_wanted(submit_args, os.environ if environ is None else environ):
        return None
    system = jvm.java.lang.System
    if system.getProperty(UI_FILTERS_KEY) is not None or not has_class(jvm, UI_FILTER):
        return None
    key = new_key()
    system.setProperty(UI_KEY_CONF, key)
    system.setProperty(UI_FILTERS_KEY, UI_FILTER)
    token = sign(key)
    jvm_pid = int(jvm.java.lang.ProcessHandle.current().pid())  # the JVM's own word: no launcher in between
    started, uid = uiroute.jvm_identity(jvm_pid)
    publish(uiroute.Route(route_key(), token, jvm_pid, started, uid, port=None, pid=os.getpid(), kernel_started=uiroute.own_start_time()))
    return token


def route_key() -> str:
    """This kernel process's route key, made once (before its first JVM: spark.ui.proxyBase names it).
    Every JVM the process launches (``%spark restart``) is reached through it, so a link stays good."""
    key: str = _issued.setdefault("key", uiroute.new_key())
    return key


def token_follows_ui(ui_url: str | None) -> None:
    """Once a SparkContext is up: its route leads to the port its UI bound (``ui_url``'s).

    Spark takes the next port when the chosen one was taken in between (by another user's kernel, a
    kernel of another Jupyter server, any program); the route's key does not change, so every link,
    the UI's own included, reaches the port Spark did bind. A later SparkContext of the same JVM
    (``spark.stop()``, then a new session) moves the route to its port.
    """
    from urllib.parse import urlparse

    route = _issued.get("route")
    try:
        bound = urlparse(ui_url).port if ui_url else None
    except ValueError:
        bound = None
    if route is not None and bound is not None and bound != route.port:
        publish(dataclasses.replace(route, port=bound))


def publish(route: uiroute.Route) -> None:
    """Write this process's route file, removed at its exit."""
    _issued["route"] = route
    path = uiroute.write_route(route)
    if not _written:
        atexit.register(remove_routes)
    _written.add(path)


def remove_routes() -> None:
    """Remove the route files this process wrote (one another process has rewritten since stays)."""
    for path in list(_written):
        if uiroute.is_own(path):
            path.unlink(missing_ok=True)
        _written.discard(path)


def facts(get: Callable[[str], str | None], spark_version: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What of this session other local accounts cannot reach, from its conf (``get(key)``), in words."""
    exposed = exposed_on_purpose(os.environ if environ is None else environ)
    rpc = "authenticated" if (get("spark.authenticate") or "").lower() == "true" else "OPEN to other local users"
    if rpc == "authenticated" and (get("spark.network.crypto.enabled") or "").lower() == "true":
        rpc += " and encrypted"
    if UI_FILTER in (get(UI_FILTERS_KEY) or ""):
        ui = "protected (JWSFilter, a key per JVM)"
    elif exposed and get(UI_FILTERS_KEY) is None:
        ui = f"OPEN to other local users: SPARK_LOCAL_IP={exposed} exposes it on purpose"
    elif not spark_version.split(".")[0].isdigit() or int(spark_version.split(".")[0]) < 4:
        ui = f"OPEN to other local users: Spark {spark_version} has no UI auth filter (JWSFilter needs Spark 4.0)"
    else:
        ui = "OPEN to other local users (spark.ui.filters set without JWSFilter)"
    return {"rpc": rpc, "ui": ui, "py4j": "secret per launch"}


def ui_note(session_facts: dict[str, str], routed: bool) -> str | None:
    """What the notebook's UI link should say beside itself: that the UI is open to other local users
    (and why), or, as a hint, that a protected UI opens only through a Jupyter server's route."""
    if session_facts["ui"].startswith("OPEN"):
        return "open to other local users" + session_facts["ui"].partition("users")[2]
    return None if routed else "protected: it opens through the Jupyter server (pyspark-kernel's server extension)"


def session_facts(context: Any) -> dict[str, str]:
    """``facts`` of a running SparkContext (pyspark's), read from its conf."""
    conf = context.getConf()
    return facts(lambda key: conf.get(key, None), context.version)
