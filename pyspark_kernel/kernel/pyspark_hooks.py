"""One SparkSession per kernel process, shared by the kernel and user code, as in the pyspark shell.

The pyspark shell makes its session before user code runs, so a notebook's first cell,
``spark = SparkSession.builder.getOrCreate()``, joins it. This kernel makes its session in a background
thread instead, so user code could race that start and launch a second JVM and SparkContext. The hooks
installed here close that window, in this process only:

- every way user code reaches a session (``SparkSession.builder.getOrCreate()``,
  ``SparkSession.getActiveSession()``/``active()``, ``SparkContext.getOrCreate()``, ``SparkContext(...)``)
  first waits for a start in flight, then runs pyspark's own code, which finds the running session;
- ``getActiveSession()`` answers with the running session in threads that did not make it (the JVM keeps
  the active session per thread, and the kernel made it on its start thread);
- builder settings that an existing session cannot take are shown, not dropped in silence (pyspark writes
  that warning only to the JVM's log); in a Spark Connect kernel a builder's ``.master(...)`` gives way to
  the kernel's server with a notice, where pyspark would raise CANNOT_CONFIGURE_SPARK_CONNECT_MASTER;
- every JVM this process launches, whoever asks for it, goes through the owner's launcher, which sends
  the JVM's output to the kernel's log and records the process so the kernel can reap it; in a Spark
  Connect kernel user code launches none (a SparkContext there would be a second, local Spark).

The session itself is never tracked here: :func:`live_session` reads pyspark's own class state, so a
session that user code stopped or built anew is seen as it is.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from pyspark_kernel.kernel import connectlimits, uiprotect

logger = logging.getLogger(__name__)


class Owner(Protocol):
    """What the hooks need from whoever owns the process's session (session.ManagedSession)."""

    remote: str | None

    def wait_for_start(self) -> None: ...

    def is_start_thread(self) -> bool: ...

    def launch_gateway(self, conf: Any) -> Any: ...

    def notice(self, text: str) -> None: ...


_owner: Owner  # set by install() before any hook can run
_install_lock = threading.Lock()
_installed = False
_ready = threading.Event()  # set once install() has run, whether or not it succeeded
_entered = threading.local()  # how deep this thread is inside a hooked pyspark entry point


def install(owner: Owner) -> None:
    """Hook pyspark's session entry points for ``owner``; once per process, later calls re-point them.
    Ends :func:`wait_installed`'s wait whether or not it succeeds."""
    global _owner, _installed
    try:
        with _install_lock:
            _owner = owner
            if _installed:
                return
            from pyspark import SparkContext
            from pyspark.sql import SparkSession

            # Patching pyspark's classes in place is the point here; mypy sees the methods' own types.
            builder = SparkSession.Builder
            builder.getOrCreate = _entry(_builder_get_or_create(builder.getOrCreate))  # type: ignore[method-assign]
            builder._validate_startup_urls = _connect_master_gives_way(builder._validate_startup_urls)  # type: ignore[method-assign]
            session_get_active = SparkSession.__dict__["getActiveSession"].__func__
            SparkSession.getActiveSession = classmethod(_entry(_get_active_session(session_get_active)))  # type: ignore[method-assign, assignment]
            context_get_or_create = SparkContext.__dict__["getOrCreate"].__func__
            SparkContext.getOrCreate = classmethod(_entry(context_get_or_create))  # type: ignore[method-assign, assignment]
            SparkContext.__init__ = _entry(SparkContext.__init__)  # type: ignore[method-assign]
            ensure_initialized = SparkContext.__dict__["_ensure_initialized"].__func__
            SparkContext._ensure_initialized = classmethod(_launch_through_owner(ensure_initialized))  # type: ignore[method-assign, assignment]
            _context_lookups_wait()
            import pyspark.traceback_utils as traceback_utils

            traceback_utils.first_spark_call = _cells_named(traceback_utils.first_spark_call)
            _installed = True
    finally:
        _ready.set()


def _cells_named(first_spark_call: Callable[[], Any]) -> Callable[[], Any]:
    """pyspark names a job after the user's line that called Spark (``collect at FILE:LINE``, the Spark UI's
    job and stage names); for a cell, FILE is IPython's temp file. Name the cell as IPython's tracebacks
    do instead: ``collect at In[3]:2``."""

    @functools.wraps(first_spark_call)
    def named() -> Any:
        site = first_spark_call()
        if site is None:
            return site
        try:
            from IPython import get_ipython

            shell = get_ipython()
            cell = shell.compile.format_code_name(site.file) if shell is not None else None
        except Exception:  # a name is a courtesy: pyspark's own stands
            cell = None
        return site._replace(file=cell[1]) if cell else site

    return named


def install_in_background(owner: Owner) -> None:
    """Import pyspark and install the hooks off the kernel's start-up path (lazy and none modes)."""

    def run() -> None:
        try:
            install(owner)
        except Exception as error:  # pyspark cannot be imported: cells run, Spark calls say why
            logger.warning("pyspark-kernel could not hook pyspark: %s", error)

    threading.Thread(target=run, name="pyspark-kernel-hooks", daemon=True).start()


def wait_installed(timeout: float = 60.0) -> None:
    """Called before each cell: returns at once once the hooks are in (or could not be)."""
    _ready.wait(timeout)


def _entry(function: Callable[..., Any]) -> Callable[..., Any]:
    """Wait for a start in flight, once, at the outermost hooked call of this thread.

    Only the outermost call waits: an inner one may run while pyspark's own lock is held (getOrCreate
    builds a SparkContext under it), and the start thread needs that lock to finish.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_entered, "depth", 0)
        if depth == 0:
            _owner.wait_for_start()
        _entered.depth = depth + 1
        try:
            return function(*args, **kwargs)
        finally:
            _entered.depth = depth

    return wrapper


def _context_lookups_wait() -> None:
    """pyspark's ``get_active_spark_context`` (``F.udf("long")``'s type string, a Window, a column
    function called before any DataFrame exists) raises SESSION_OR_CONTEXT_NOT_EXISTS while the kernel's
    session is still starting, where the same cell a moment later works: make it wait for the start,
    as a use of ``spark`` does. Modules that imported it by name hold the old function: re-pointed too."""
    import pyspark.sql.utils as sql_utils
    from pyspark import SparkContext

    original = sql_utils.get_active_spark_context

    @functools.wraps(original)
    def get_active_spark_context() -> Any:
        if SparkContext._active_spark_context is None:  # the check pyspark makes: nothing more once a context runs
            _owner.wait_for_start()
        return original()

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("pyspark.") and getattr(module, "get_active_spark_context", None) is original:
            module.get_active_spark_context = get_active_spark_context  # type: ignore[attr-defined]


def _builder_get_or_create(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_or_create(builder: Any) -> Any:
        existing = live_session(_owner.remote)
        unapplied = []
        if existing is not None and not _owner.is_start_thread():
            unapplied = unapplied_settings(dict(builder._options), existing)
        session = original(builder)
        if _owner.remote is None and session is not existing:
            uiprotect.token_follows_ui(session.sparkContext.uiWebUrl)  # a new SparkContext: where its UI went
        if unapplied and session is existing:
            _owner.notice(
                "This kernel's SparkSession was already running, so these builder settings were not applied: "
                + ", ".join(unapplied)
                + ". Runtime SQL settings were applied. To use the others, stop the session first "
                "(spark.stop(), then build it again: the kernel adopts the new session), "
                "or restart it with %spark conf KEY=VALUE."
            )
        return session

    return get_or_create


def unapplied_settings(options: dict[str, str], session: Any) -> list[str]:
    """``KEY=VALUE (running: CURRENT)`` for each builder option the running session will not take.

    Read before the builder runs: pyspark applies the runtime SQL settings to an existing session and
    skips the rest (master, app name, static settings), saying so only in the JVM's log, yet it writes
    them into the session's SQL conf, so that ``spark.conf.get`` afterwards shows values not in effect.
    """
    unapplied = []
    for key, value in options.items():
        if key == "spark.remote":
            continue
        try:
            if session.conf.isModifiable(key):
                continue
            current = session.conf.get(key, None)
        except Exception:  # a key the session cannot read back: nothing to compare
            continue
        if current != value:
            unapplied.append(f"{key}={value} (running: {current})")
    return unapplied


def _connect_master_gives_way(original: Callable[..., Any]) -> Callable[..., Any]:
    def validate(builder: Any) -> None:
        remote = _owner.remote
        if remote and "spark.master" in builder._options and "spark.remote" not in builder._options:
            master = builder._options.pop("spark.master")
            _owner.notice(
                f".master({master!r}) was ignored: this kernel runs on the Spark Connect server {remote}. "
                "To run locally, use a kernelspec installed without --remote."
            )
        original(builder)

    return validate


def _get_active_session(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_active_session(cls: type) -> Any:
        session = original(cls)
        if session is None:
            session = live_session(_owner.remote)
            if session is not None:
                make_active(session)
        return session

    return get_active_session


def _launch_through_owner(original: Callable[..., Any]) -> Callable[..., Any]:
    def ensure_initialized(cls: Any, instance: Any = None, gateway: Any = None, conf: Any = None) -> None:  # cls: SparkContext
        if gateway is None:
            with cls._lock:
                if cls._gateway is None:
                    if _owner.remote and not _owner.is_start_thread():  # a Connect kernel starts no local JVM
                        raise connectlimits.local_context_refused()
                    gateway = _owner.launch_gateway(conf)
        original(cls, instance, gateway, conf)

    return ensure_initialized


def live_session(remote: str | None) -> Any:
    """The session user code and the kernel share now, or None: read from pyspark's class state, never
    imported for it (a kernel that has not used Spark has none). A module the start thread is still
    importing has no SparkSession class yet, and no session either."""
    if remote:
        session_class = getattr(sys.modules.get("pyspark.sql.connect.session"), "SparkSession", None)
        return session_class._get_default_session() if session_class else None
    session_class = getattr(sys.modules.get("pyspark.sql.session"), "SparkSession", None)
    if session_class is None:
        return None
    session = session_class._instantiatedSession
    if session is None or session._sc._jsc is None:
        return None
    return session


def make_active(session: Any) -> None:
    """Make ``session`` the calling thread's active session, in the JVM and in pyspark."""
    from pyspark.sql import SparkSession

    if hasattr(session, "_jsparkSession"):
        # Spark 4 keeps the classic session in org.apache.spark.sql.classic; 3.5 has no such helper
        # and uses the py4j-imported org.apache.spark.sql.SparkSession (a pandas UDF there needs this)
        java_class = getattr(SparkSession, "_get_j_spark_session_class", None)
        (java_class(session._jvm) if java_class else session._jvm.SparkSession).setActiveSession(session._jsparkSession)
        SparkSession._activeSession = session
    else:
        type(session)._active_session.session = session
