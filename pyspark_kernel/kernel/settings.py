"""How this kernel's session is to be made, read once from the kernel process's environment.

Third step of the data path: kernel.json's ``env`` (SPARK_HOME, PYSPARK_SUBMIT_ARGS or SPARK_REMOTE,
PYSPARK_KERNEL_START) as the kernel process sees it -> SessionSettings, which every JVM launch of the
process reads (the kernel's start, a user's builder, %spark restart).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pyspark_kernel import environment, isolation, notebookconf, secrets, submitargs
from pyspark_kernel.errors import Problem, SparkEnvironmentError
from pyspark_kernel.kernel import launchdirs, uiprotect
from pyspark_kernel.localserver import is_local_remote
from pyspark_kernel.ports import PortReservation, reserve_ui_port
from pyspark_kernel.variables import BASE_URL, START, UI_PROXY, UI_ROUTE

UI_ROUTE_VAR = UI_ROUTE.name  # set by server/uiproxy.py in the Jupyter server, inherited by its kernels


@dataclass(frozen=True)
class SessionSettings:
    """How this kernel's session is to be made."""

    start: str = "eager"  # eager | lazy | none
    remote: str | None = None  # Spark Connect URL (SPARK_REMOTE): no local JVM
    app_name: str = "pyspark-kernel"
    submit_args: str = submitargs.CLOSING
    log_path: Path | None = None
    defaults: dict[str, str] = field(default_factory=dict)  # extra per-launch conf, under the user's
    ui_proxy: str | None = None  # route prefix of a proxy to the Spark UI, e.g. /user/alice/proxy/
    ui_port: PortReservation | None = None  # held for the kernel's life when the UI's port is chosen here
    ui_route_key: str | None = None  # the key of this kernel's route in pyspark-kernel's server extension
    problem: Problem | None = None  # why no JVM can be launched with these settings (the start says so in a cell)

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None, log_path: Path | None = None) -> SessionSettings:
        """Never raises: a kernel that died here would be restarted by Jupyter in a loop; a fault is
        kept in ``problem`` instead, for the session's start to show in a cell."""
        environ = dict(os.environ if environ is None else environ)
        remote = environ.get("SPARK_REMOTE") or None
        submit_args = environ.get("PYSPARK_SUBMIT_ARGS", submitargs.CLOSING)
        defaults: dict[str, str] = {}
        reservation = route_key = ui_proxy = None
        problem: Problem | None = None
        try:
            if not remote:
                submitargs.parse(submit_args)
            ui_proxy = ui_proxy_prefix(environ)
            if ui_proxy and not remote:
                # The UI's port is held (ports.py) so that a kernel starting beside this one cannot pick it too.
                # A generic proxy's proxyBase names that port; pyspark-kernel's own route names a key of this
                # kernel instead, which nobody can take before Spark binds (it may bind another port).
                port = submitargs.parse(submit_args).conf.get("spark.ui.port")
                if port is None:
                    reservation = reserve_ui_port()
                    port = str(reservation.port)
                route_key = uiprotect.route_key() if ui_proxy == own_route(environ) else None
                defaults = {"spark.ui.port": port, "spark.ui.proxyBase": f"{ui_proxy}{route_key or port}"}
            elif ui_proxy and is_local_remote(remote) and ui_proxy == own_route(environ):
                route_key = uiprotect.route_key()  # to the shared local server's UI (backends/localserver.py)
        except ValueError as error:  # shlex: an unbalanced quote or a trailing backslash
            problem = SparkEnvironmentError(
                f"PYSPARK_SUBMIT_ARGS in this kernel's environment is not valid shell syntax ({error}), so spark-submit cannot be given it.",
                "correct its quoting in the kernelspec's env (pyspark-kernel show NAME prints it), or reinstall the kernelspec: pyspark-kernel install ... --replace",
            )
        except Problem as error:  # no free port for the Spark UI
            problem = error
        return cls(
            start=environ.get(START.name, "eager"),
            remote=remote,
            # jupyter_server names the notebook in JPY_SESSION_NAME: the Spark UI then says whose app it is.
            app_name=environ.get("JPY_SESSION_NAME") or "pyspark-kernel",
            submit_args=submit_args,
            log_path=log_path,
            defaults=defaults,
            ui_proxy=ui_proxy,
            ui_port=reservation,
            ui_route_key=route_key,
            problem=problem,
        )

    def user_conf(self) -> dict[str, str]:
        """The ``--conf KEY=VALUE`` pairs in PYSPARK_SUBMIT_ARGS, which outrank every default here."""
        return submitargs.parse(self.submit_args).conf

    def launch_submit_args(self, overrides: dict[str, str], local_dir: str | None = None) -> str:
        """PYSPARK_SUBMIT_ARGS for a JVM launch: the kernelspec's, the notebook defaults it does not set,
        then ``overrides`` (%spark conf) last, so they win and reach the JVM's own start.

        The defaults ride on spark-submit's command line, not on one SparkConf, so every session of this
        JVM has them, including one a user's builder makes after spark.stop(); a builder's own
        settings still win over them. They also outrank what spark-submit implies for a shell (it
        turns the console progress bar on and names the app "pyspark-shell").
        """
        user_conf = self.user_conf()
        kernel_conf = {**notebookconf.launch_defaults(self.submit_args), "spark.app.name": self.app_name, **self.defaults}
        if local_dir:  # this launch's own temp folder (localdirs.py), unless the user chose Spark's local dirs
            kernel_conf["spark.local.dir"] = local_dir
        defaults = {key: value for key, value in kernel_conf.items() if key not in user_conf}
        plain, secret = secrets.split(overrides)
        submit_args = submitargs.with_conf(submitargs.with_conf(self.submit_args, defaults), plain)
        return with_private_conf(submit_args, secret, Path(local_dir) if local_dir else None) if secret else submit_args

    def launch_environ(self, overrides: dict[str, str], local_dir: Path | None = None) -> dict[str, str]:
        """The variables a JVM launch sets for spark-submit: its arguments, and the JVM options that put
        its temp files in ``local_dir`` (localdirs.py). The kernel's start and an early launch
        (prelaunch.py) both take them from here, so both run the same command."""
        environ = {"PYSPARK_SUBMIT_ARGS": self.launch_submit_args(overrides, str(local_dir) if local_dir else None)}
        if local_dir:
            environ["SPARK_SUBMIT_OPTS"] = f"{launchdirs.java_options(local_dir)} {os.environ.get('SPARK_SUBMIT_OPTS', '')}".strip()
        return environ

    def ui_link(self, ui_url: str | None) -> str | None:
        """The Spark UI as the user's browser reaches it: through the proxy when there is one."""
        if not ui_url or not self.ui_proxy:
            return ui_url
        return f"{self.ui_proxy}{self.ui_route_key or ui_url.rsplit(':', 1)[-1].strip('/')}/jobs/"

    def ui_root(self, ui_url: str | None) -> str | None:
        """The Spark UI's root as the browser reaches it, ending in "/": the job view's links append a page to it."""
        link = self.ui_link(ui_url)
        if not link:
            return None
        return link.removesuffix("jobs/") if self.ui_proxy else link.rstrip("/") + "/"


def with_private_conf(submit_args: str, secret: dict[str, str], folder: Path | None) -> str:
    """``submit_args`` reading ``secret`` (%spark conf values whose keys name secrets, secrets.py) from a
    0600 properties file of this launch, merged over the kernelspec's own secret file: spark-submit
    reads one, and a command line is for every local account to see.

    The file lives in the launch's temp folder (localdirs.py), removed with it once the JVM has exited;
    without one, in a 0700 folder of its own, removed when the kernel exits.
    """
    submitted = submitargs.parse(submit_args)
    current = submitted.flags.get(submitargs.PROPERTIES_FILE)
    stored = secrets.read_private(Path(current)) if current else {}
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="pyspark-kernel-conf-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "secret-conf.properties"
    secrets.write_private(path, {**stored, **secret})
    switches = [] if current else secrets.submit_flags(path, local_spark_version())[2:]
    return submitargs.with_properties_file(submit_args, str(path), switches)


def local_spark_version() -> str:
    """The version of the Spark this kernel launches (its SPARK_HOME); "3" (read no defaults) if unknown."""
    try:
        return environment.spark_version_of(environment.find_spark_home(None, dict(os.environ)))[0]
    except Exception:
        return "3"


def log_path_for(connection_file: str) -> Path:
    """The JVM's log beside the kernel's connection file: kernel-<id>.json -> kernel-<id>-spark.log."""
    return Path(os.path.splitext(connection_file)[0] + "-spark.log")


def ui_proxy_prefix(environ: dict[str, str]) -> str | None:
    """Where the browser reaches this machine's ports through the notebook server, if it must.

    A Jupyter server with pyspark-kernel's extension (server/uiproxy.py) says so in PYSPARK_KERNEL_UI_ROUTE,
    which its kernels inherit: that route adds the token of a UI behind JWSFilter, which no generic
    proxy can, so for such a UI it comes first. PYSPARK_KERNEL_UI_PROXY says so explicitly; under
    JupyterHub (JUPYTERHUB_SERVICE_PREFIX) or a server that passed its base URL
    (PYSPARK_KERNEL_BASE_URL) it is ``<base>proxy/`` when jupyter-server-proxy is installed, since only
    then does that route exist. An open UI is linked as before.
    """
    route = own_route(environ)
    if route:
        return route
    explicit = environ.get(UI_PROXY.name)
    if explicit:
        return explicit.rstrip("/") + "/"
    base = environ.get("JUPYTERHUB_SERVICE_PREFIX") or environ.get(BASE_URL.name)
    if base and importlib.util.find_spec("jupyter_server_proxy") is not None:
        return base.rstrip("/") + "/proxy/"
    return None


def own_route(environ: dict[str, str]) -> str | None:
    """pyspark-kernel's own route in the Jupyter server that started this kernel, for a UI it protects."""
    route = environ.get(UI_ROUTE_VAR)
    if route and isolation.ui_filter_wanted(environ.get("PYSPARK_SUBMIT_ARGS", submitargs.CLOSING), environ):
        return route.rstrip("/") + "/"
    return None
