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
  the Jupyter server (serverext.py), which reads a token signed with that key from
  ``<runtime dir>/pyspark-ui-<port>.json`` (mode 0600, in the user's own runtime folder);
- py4j keeps the per-launch secret pyspark gives it (in the JVM's environment, never on its command line).

Spark 3.5 has no JWSFilter: its UI stays open to every local account, and the kernel says so.
Nothing here imports Spark; the server extension imports only ``read_route``.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any, Callable, Mapping

from . import submitargs

RPC_DEFAULTS = {"spark.authenticate": "true", "spark.network.crypto.enabled": "true"}
UI_FILTER = "org.apache.spark.ui.JWSFilter"
UI_FILTERS_KEY = "spark.ui.filters"
UI_KEY_CONF = f"spark.{UI_FILTER}.param.secretKey"
# The masters for which Spark's SecurityManager generates the secret itself (SparkMasterRegex's "local",
# LOCAL_N_REGEX, LOCAL_N_FAILURES_REGEX); any other master needs spark.authenticate.secret from its user.
LOCAL_MASTER = re.compile(r"local(\[([0-9]+|\*)(\s*,\s*[0-9]+)?\])?")
TOKEN_FILE = "pyspark-ui-{port}.json"

_written: set[Path] = set()  # the token files of this process, removed at its exit
_issued: dict[str, Any] = {}  # the token protect_ui made for this process's JVM, and the port its file names


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


def protect_ui(jvm: Any, submit_args: str, ui_port: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """Put the UI of the JVM behind ``jvm`` (a py4j view, before its first SparkConf), launched with
    ``submit_args``, behind JWSFilter with a new key; returns the token for that key, or None when the
    UI stays as it was.

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
    _issued.update(token=token, port=None)
    if ui_port and ui_port.isdigit() and int(ui_port) > 0:
        write_token(int(ui_port), token)
        _issued["port"] = int(ui_port)
    return token


def token_follows_ui(ui_url: str | None) -> None:
    """Once a SparkContext is up: the route of the port chosen for its UI leads to the port it bound.

    Spark takes the next port when the chosen one was taken in between (by a kernel of another user, of
    another Jupyter server, or any other program). The UI's own links still start with the chosen port
    (``spark.ui.proxyBase`` is fixed before the JVM starts), so the chosen port's file is rewritten to
    forward to the bound port, and the bound port gets a file of its own (the kernel links that one).
    Neither ever sends this token to whoever holds the chosen port. A chosen port whose file another
    kernel of this user has rewritten since is that kernel's: it is left alone. A later SparkContext of
    the same JVM (``spark.stop()``, then a new session) moves every route of this process to its port.
    """
    from urllib.parse import urlparse

    token, chosen = _issued.get("token"), _issued.get("port")
    try:
        bound = urlparse(ui_url).port if ui_url else None
    except ValueError:
        bound = None
    if not token or bound is None or bound == chosen:
        return
    routes = [facts for facts in map(own_facts, list(_written)) if facts is not None]
    write_token(bound, token)
    _issued["port"] = bound
    for facts in routes:
        port = facts.get("port")
        if isinstance(port, int) and port != bound:
            write_token(port, token, target=bound)


def runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def token_path(port: int, folder: Path | None = None) -> Path:
    return (folder or runtime_dir()) / TOKEN_FILE.format(port=port)


def write_token(port: int, token: str, target: int | None = None) -> Path:
    """The UI's token, readable by this user alone, where this user's Jupyter server looks for it: the
    route of ``port`` forwards to ``target`` (the same port unless Spark bound another, above)."""
    path = token_path(port)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an older file of this port may have had other bits
        json.dump({"port": port, "target": target or port, "token": token, "pid": os.getpid()}, handle)
    if not _written:
        atexit.register(remove_tokens)
    _written.add(path)
    return path


def read_route(port: int, folder: Path | None = None) -> tuple[int, str] | None:
    """Where the route of ``port`` forwards (the port the UI bound) and with which token, if the kernel
    that wrote its file still runs; None otherwise.

    A file left by a kernel that was killed names a process that is gone: its port may since have
    been taken by someone else's server, which must not be sent anything in this user's name.
    """
    try:
        facts = json.loads(token_path(port, folder).read_text())
        os.kill(int(facts["pid"]), 0)  # only succeeds for a live process of this user
        target, token = int(facts.get("target", port)), facts["token"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (target, token) if facts.get("port") == port and isinstance(token, str) else None


def read_token(port: int, folder: Path | None = None) -> str | None:
    """The token of the live kernel whose UI the route of ``port`` leads to (read_route)."""
    route = read_route(port, folder)
    return route[1] if route else None


def own_facts(path: Path) -> dict[str, Any] | None:
    """What the token file ``path`` says, if this process wrote it and no other kernel has rewritten it
    since (or removed it); None otherwise."""
    try:
        facts = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return facts if isinstance(facts, dict) and facts.get("pid") == os.getpid() else None


def remove_tokens() -> None:
    for path in list(_written):
        remove_token(path)


def remove_token(path: Path) -> None:
    """Remove a token file this process wrote (one another kernel has rewritten since stays)."""
    if own_facts(path) is not None:
        try:
            path.unlink()
        except OSError:
            pass
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
