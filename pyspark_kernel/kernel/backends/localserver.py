"""The kernel's side of the shared local Spark Connect server (``install --remote 'local[*]'``).

pyspark 4.3 does the server's work: ``LocalConnectServer.reuse_or_start`` (pyspark.sql.connect.local_server)
joins the user's running server or starts one through ``sbin/start-connect-server.sh``, under its
discovery file's lock, with a 0600 token. This module gives it what a kernelspec says and a notebook
needs (localserver.py keeps the files):

- the folder of this kernelspec's server (a Spark version and server settings each get their own), also
  put in SPARK_LOCAL_CONNECT_DISCOVERY so that a user's own ``SparkSession.builder.getOrCreate()`` joins
  the same server;
- the server's start settings, from the kernelspec's PYSPARK_SUBMIT_ARGS: master, driver memory, the
  class-data archive, ``--conf``; and a Spark UI on a port of its own behind JWSFilter with a new key;
- a lease, which keeps the server's keeper (serverkeeper.py) from stopping it while this kernel lives;
- the token, put in the URL this process's client is given, never left in os.environ.

The server itself is started by a process of its own (localstarter.py), in the server's working folder,
as soon as ipykernel's shell is built (prelaunch.py).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pyspark_kernel import localserver, processes, secrets, serverkeeper, submitargs
from pyspark_kernel.errors import SparkStartError
from pyspark_kernel.isolation import UI_FILTER, UI_FILTERS_KEY, ui_filter_wanted
from pyspark_kernel.kernel import uiprotect
from pyspark_kernel.kernel.settings import SessionSettings
from pyspark_kernel.ports import reserve_ui_port
from pyspark_kernel.variables import SERVER_IDLE_TIMEOUT

TOKEN_VAR = "SPARK_CONNECT_AUTHENTICATE_TOKEN"  # pyspark's: set by reuse_or_start, read by every client
DISCOVERY_VAR = "SPARK_LOCAL_CONNECT_DISCOVERY"
# spark-submit flags whose Spark property the server's properties file can carry instead.
FLAG_PROPERTIES = {"--driver-memory": "spark.driver.memory", "--packages": "spark.jars.packages", "--jars": "spark.jars", "--py-files": "spark.submit.pyFiles"}
UI_KEY_CONF = f"spark.{UI_FILTER}.param.secretKey"
SERVER_PORT_CONF = "spark.local.connect.server.port"  # read by pyspark's launcher (_pick_port), not passed to Spark


@dataclass(frozen=True)
class Joined:
    """A server this kernel uses: the URL its client connects to (token inside) and the server's facts."""

    url: str
    pid: int
    started: float | None  # the server process's start time: tells it from a later process of its pid
    ui_port: int | None
    ui_key: str | None
    started_here: bool


def server_opts(environ: Mapping[str, str]) -> dict[str, str]:
    """The server's start settings (pyspark writes them to a 0600 properties file of its start)."""
    submit_args = environ.get("PYSPARK_SUBMIT_ARGS", submitargs.CLOSING)
    submitted = submitargs.parse(submit_args)
    opts = {"spark.app.name": "pyspark-kernel local Connect server", "spark.port.maxRetries": "500"}
    opts.update({prop: submitted.flags[flag] for flag, prop in FLAG_PROPERTIES.items() if submitted.flags.get(flag)})
    private = submitted.flags.get(submitargs.PROPERTIES_FILE)
    if private:
        opts.update(secrets.read_private(Path(private)))
    opts.update(submitted.conf)
    if ui_filter_wanted(submit_args, environ) and UI_FILTERS_KEY not in opts:
        opts[UI_FILTERS_KEY] = UI_FILTER
        opts[UI_KEY_CONF] = uiprotect.new_key()
    return opts


class NotRunning(Exception):
    """No reusable server, and this process may not start one (a kernel: its starter does, run_starter)."""


def ensure(place: localserver.ServerPlace, may_start: bool = False) -> Joined:
    """Join the server in ``place`` (the kernelspec's: localserver.place_from), or with ``may_start`` start it
    (and its keeper) if none runs; raises NotRunning otherwise. Takes no lease."""
    from pyspark.sql.connect.local_server import Discovery, LocalConnectServer

    environ = os.environ
    place.make()
    os.environ[DISCOVERY_VAR] = str(place.discovery)
    token_before = os.environ.get(TOKEN_VAR)
    try:
        with Discovery(str(place.discovery)) as discovery:
            server = LocalConnectServer(discovery)
            started_here = not server.is_reusable()
            if started_here and not may_start:
                raise NotRunning
            if started_here:
                joined = start(server, place, environ)
            else:
                record = localserver.read_json(place.record_path) or {}
                url = server.reuse_or_start(environ.get("SPARK_REMOTE", "local[*]"), {})
                pid = int(server.pid or 0)
                started = record.get("server_started") if record.get("server_pid") == pid else None
                joined = Joined(with_token(url), pid, started, record.get("ui_port"), record.get("ui_key"), False)
            serverkeeper.start_keeper(place)
            return joined
    finally:
        if token_before is None:
            os.environ.pop(TOKEN_VAR, None)  # a subprocess of a cell would inherit it
        else:
            os.environ[TOKEN_VAR] = token_before


def start(server: object, place: localserver.ServerPlace, environ: Mapping[str, str]) -> Joined:
    """Start the server with this kernelspec's settings and record what the kernels that join need."""
    opts = server_opts(environ)
    reservation = reserve_ui_port() if "spark.ui.port" not in opts else None
    if reservation is not None:
        opts["spark.ui.port"] = str(reservation.port)
    # pyspark picks the default 15002 whenever it is free at that moment; two accounts whose first notebooks
    # start together (a hub's users) both pick it, the later JVM fails to bind, and its notebooks wait for a
    # second start. A port of the system's ephemeral range is not anyone's default.
    opts.setdefault(SERVER_PORT_CONF, str(ephemeral_port()))
    try:
        url = server.reuse_or_start(environ.get("SPARK_REMOTE", "local[*]"), opts)  # type: ignore[attr-defined]
    except Exception as error:
        raise SparkStartError(
            f"The local Spark Connect server did not start: {error}",
            f"its log is in {place.log_dir}; `pyspark-kernel server stop` ends a server left half-started, then run the cell again.",
        ) from None
    finally:
        if reservation is not None:
            reservation.release()
    pid = int(server.pid or 0)  # type: ignore[attr-defined]
    if not listens_on(pid, int(server.port or 0)):  # type: ignore[attr-defined]
        # pyspark took whatever answered on the port it picked for its server: another program that bound
        # it in between would get this user's token and every notebook's queries. Stop, and say so.
        server.stop()  # type: ignore[attr-defined]
        raise SparkStartError(
            f"The local Spark Connect server's port {server.port} was taken by another program while the server started.",  # type: ignore[attr-defined]
            "run the cell again: the next start picks another port.",
        )
    identity = processes.identify(pid)
    ui_port = bound_ui_port(pid, int(opts["spark.ui.port"]), int(server.port or 0))  # type: ignore[attr-defined]
    localserver.write_private_json(
        place.record_path,
        {
            "server_pid": pid,
            "server_started": identity.create_time if identity else None,
            "ui_port": ui_port,
            "ui_key": opts.get(UI_KEY_CONF),
            "spark_version": server.spark_version,  # type: ignore[attr-defined]
            "master": environ.get("SPARK_REMOTE", "local[*]"),
            "python": sys.executable,
            "pythonpath": environ.get("PYTHONPATH", ""),
            "idle_timeout": idle_timeout(environ),
            "started": time.time(),
        },
    )
    return Joined(with_token(url), pid, identity.create_time if identity else None, ui_port, opts.get(UI_KEY_CONF), True)


class SharedServer:
    """The shared local server as one kernel uses it: its lease, the server it joined, what it lost."""

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.place = localserver.place_from(os.environ)
        self.joined: Joined | None = None
        self._lease: Path | None = None

    def join(self) -> str:
        """Lease the server (start it if none runs) and route its UI; the URL for the client."""
        self.place.make()
        if self._lease is None:
            with self.place.keeper_lock():
                self._lease = localserver.take_lease(self.place)
        try:
            self.joined = ensure(self.place)
        except NotRunning:
            from pyspark_kernel.kernel.backends.localstarter import run_starter

            run_starter(wait=True)
            self.joined = ensure(self.place)
        publish_route(self.joined)
        return self.joined.url

    def lost(self) -> str | None:
        """Why the session is gone under the notebook (its server died), or None; no call to the server."""
        joined = self.joined
        if joined is None or is_running(joined):
            return None
        return (
            f"The local Spark Connect server (pid {joined.pid}) had stopped (killed, or out of memory); a new one is started for this cell. "
            "This notebook's Spark session is new: its temp views, cached DataFrames, spark.conf settings and registered functions are gone, "
            "and DataFrames made before belong to the old session: re-run the cells that made them."
        )

    def describe(self, facts: dict[str, str | None]) -> dict[str, str | None]:
        if self.joined is None:
            return facts
        facts["master"] = f"shared local Connect server (pid {self.joined.pid}, {facts['master']})"
        if self.joined.ui_port is not None:
            facts["ui"] = self.settings.ui_link(f"http://127.0.0.1:{self.joined.ui_port}/")
            if self.joined.ui_key and not self.settings.ui_route_key:
                facts["ui_note"] = "protected: it opens through the Jupyter server (pyspark-kernel's server extension)"
        return facts

    def ui_root(self) -> str | None:
        if self.joined is None or self.joined.ui_port is None:
            return None
        return self.settings.ui_root(f"http://127.0.0.1:{self.joined.ui_port}/")

    def status_lines(self, remote: str | None) -> list[str]:
        """%spark's lines: the server (pid, port, memory, kernels), and the UI as this notebook reaches it."""
        lines = [f"remote: {remote}, shared local Spark Connect server: {localserver.status(self.place).line()}"]
        if self.joined is not None and self.joined.ui_port is not None:
            lines.append(f"Spark UI: {self.settings.ui_link(f'http://127.0.0.1:{self.joined.ui_port}/')}")
        return lines

    @staticmethod
    def fail_fast(session: object) -> None:
        """A local server that died does not come back by waiting: retry for seconds, not the client's ten
        minutes, so a cell running when it died fails soon and the next one starts a new server."""
        from pyspark.sql.connect.client.retries import DefaultPolicy

        client = getattr(session, "client", None)
        if client is not None:
            client.set_retry_policies([DefaultPolicy(max_retries=4, max_backoff=2000)])


def is_running(joined: Joined) -> bool:
    """Whether the server the session is on still runs (a kill -9 or the OOM killer ends it under the notebook)."""
    if joined.started is None:
        return processes.identify(joined.pid) is not None
    return processes.is_running(processes.ProcessIdentity(joined.pid, joined.started))


def with_token(url: str) -> str:
    """pyspark's URL with the token it put in os.environ, for this process's client alone."""
    token = os.environ.get(TOKEN_VAR)
    return f"{url}/;token={token}" if token else url


def idle_timeout(environ: Mapping[str, str]) -> float:
    try:
        return float(environ.get(SERVER_IDLE_TIMEOUT.name) or localserver.DEFAULT_IDLE_TIMEOUT)
    except ValueError:
        return localserver.DEFAULT_IDLE_TIMEOUT


def listening_ports(pid: int) -> set[int] | None:
    """The TCP ports the process ``pid`` listens on; None when it cannot be read (gone, or not ours)."""
    import psutil

    try:
        connections = processes.tcp_connections(psutil.Process(pid))
    except psutil.Error:
        return None
    return {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}


def listens_on(pid: int, port: int) -> bool:
    """Whether the process ``pid`` itself listens on ``port`` (not another program that answers there)."""
    return port in (listening_ports(pid) or set())


def bound_ui_port(pid: int, asked: int, grpc_port: int, wait: float = 10.0) -> int | None:
    """The port the server's UI bound: the asked one, or the next free one Spark took instead."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        listening = listening_ports(pid)
        if listening is None:
            return None
        candidates = sorted(port for port in listening if asked <= port <= asked + 500 and port != grpc_port)
        if candidates:
            return candidates[0]
        time.sleep(0.1)
    return None


def publish_route(joined: Joined) -> None:
    """This kernel's route to the server's UI (uiroute.py), reached through the Jupyter server."""
    if joined.ui_port is None or not joined.ui_key:
        return
    from pyspark_kernel import uiroute

    started, uid = uiroute.jvm_identity(joined.pid)
    uiprotect.publish(
        uiroute.Route(
            uiprotect.route_key(),
            uiprotect.sign(joined.ui_key),
            joined.pid,
            started,
            uid,
            port=joined.ui_port,
            pid=os.getpid(),
            kernel_started=uiroute.own_start_time(),
        )
    )


def ephemeral_port() -> int:
    """A port free now, from the system's ephemeral range, for the server's gRPC endpoint."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
