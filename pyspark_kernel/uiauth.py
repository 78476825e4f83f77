"""Isolation between the users of one machine: what a local-mode kernel's JVM lets other accounts do.

Binding 127.0.0.1 keeps the network out, not the other accounts of the same machine. So, unless the
kernelspec's own ``--conf`` says otherwise:

- the driver's RPC and block-manager ports authenticate every client (``spark.authenticate``) and
  encrypt what they carry (``spark.network.crypto.enabled``). In local mode Spark's SecurityManager
  makes the secret itself, inside the JVM (``initializeAuth``: "In YARN and local mode, generate a new
  secret"), so no secret is passed at all; these two switches ride on spark-submit's command line;
- the Spark UI sits behind Spark's own ``org.apache.spark.ui.JWSFilter`` (Spark >= 4.0) with a key made
  here for each JVM. The key is a secret, so it never goes on a command line (``ps`` shows
  spark-submit's) nor into the environment: right after the JVM is launched, and before any SparkConf
  exists, it is set as a JVM system property over py4j, so every SparkConf of that JVM (the kernel's
  session, a user's builder after ``spark.stop()``) carries it. The owner's browser gets in through
  the Jupyter server (serverext.py), which reads a token signed with that key from this kernel's
  route file (uiroute.py: mode 0600, in the user's own runtime folder, naming the JVM and its port);
- py4j keeps the per-launch secret pyspark gives it (in the JVM's environment, never on its command line).

Spark 3.5 has no JWSFilter: its UI stays open to every local account, and the kernel says so.
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
import re
import secrets
from pathlib import Path
from typing import Any, Callable, Mapping

from . import submitargs, uiroute
from .uiroute import read_token  # noqa: F401 (the owner's way to a UI's port, as tests reach it)

RPC_DEFAULTS = {"spark.authenticate": "true", "spark.network.crypto.enabled": "true"}
UI_FILTER = "org.apache.spark.ui.JWSFilter"
UI_FILTERS_KEY = "spark.ui.filters"
UI_KEY_CONF = f"spark.{UI_FILTER}.param.secretKey"
# The masters for which Spark's SecurityManager generates the secret itself (SparkMasterRegex's "local",
# LOCAL_N_REGEX, LOCAL_N_FAILURES_REGEX); any other master needs spark.authenticate.secret from its user.
LOCAL_MASTER = re.compile(r"local(\[([0-9]+|\*)(\s*,\s*[0-9]+)?\])?")

_written: set[Path] = set()  # the route files of this process, removed at its exit
_issued: dict[str, Any] = {}  # this process's route key, and the route of its current JVM


def makes_own_secret(master: str) -> bool:
    """True when Spark generates the auth secret inside the JVM for ``master`` (local mode)."""
    return LOCAL_MASTER.fullmatch(master.strip()) is not None


def rpc_defaults(master: str) -> dict[str, str]:
    """The launch conf that authenticates and encrypts the driver's RPC and block transfers: for local
    masters only (a cluster's executors would need the secret too, which is the cluster admin's call)."""
    return dict(RPC_DEFAULTS) if makes_own_secret(master) else {}


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


def exposed_on_purpose(environ: Mapping[str, str]) -> str | None:
    """The kernelspec's SPARK_LOCAL_IP when it lifts local mode's loopback default (``--env
    SPARK_LOCAL_IP 0.0.0.0``, as the Docker image does so that a published port reaches the UI)."""
    address = environ.get("SPARK_LOCAL_IP", "").strip()
    return address if address and not (address.startswith("127.") or address in ("localhost", "::1")) else None


def ui_filter_wanted(submit_args: str, environ: Mapping[str, str]) -> bool:
    """Whether a JVM of these spark-submit arguments gets JWSFilter: local mode on loopback, and no
    ``spark.ui.filters`` of the user's. A UI exposed on purpose stays reachable as it was asked to be."""
    submitted = submitargs.parse(submit_args)
    return makes_own_secret(submitted.master) and UI_FILTERS_KEY not in submitted.conf and not exposed_on_purpose(environ)


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
    publish(uiroute.Route(route_key(), token, jvm_pid, started, uid, port=None, pid=os.getpid()))
    return token


def route_key() -> str:
    """This kernel process's route key, made once (before its first JVM: spark.ui.proxyBase names it).
    Every JVM the process launches (``%spark restart``) is reached through it, so a link stays good."""
    return _issued.setdefault("key", uiroute.new_key())


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
