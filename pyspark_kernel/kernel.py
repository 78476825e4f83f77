"""PySparkKernel: ipykernel's IPythonKernel with a SparkSession that starts while you type.

Last step of the data path: the kernel owns a ManagedSession (session.py), puts ``spark`` and ``sc``
in the user namespace at once, and stops the session and its JVM on shutdown and restart. Until the
session is up, ``spark`` and ``sc`` are stand-ins that wait for it when touched; from the first cell
after it is up they are the real objects, so ``isinstance`` and libraries that check types work.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ipykernel.ipkernel import IPythonKernel

from . import __version__
from .session import ManagedSession, SessionSettings, SparkStartError, describe


class SparkStandIn:
    """Stands for ``spark`` or ``sc`` while the session starts; any use waits for it, then delegates."""

    def __init__(self, kernel: PySparkKernel, name: str) -> None:
        object.__setattr__(self, "_kernel", kernel)
        object.__setattr__(self, "_name", name)

    def _target(self) -> Any:
        return self._kernel.spark_object(self._name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._target(), attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        setattr(self._target(), attribute, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __dir__(self) -> list[str]:
        session = self._kernel.spark_session
        return dir(self._target()) if session.ready else ["(Spark is starting)"]

    def __repr__(self) -> str:
        session = self._kernel.spark_session
        if session.ready:
            return repr(self._target())
        return f"<{self._name}: Spark is {session.state}; using it waits for the session>"


class PySparkKernel(IPythonKernel):
    """An IPython kernel whose namespace has a SparkSession ``spark`` and its SparkContext ``sc``."""

    implementation = "pyspark_kernel"
    implementation_version = __version__
    banner = "PySpark kernel: IPython with a SparkSession as `spark` and its SparkContext as `sc`"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spark_session = ManagedSession(SessionSettings.from_environ(log_path=self._log_path()))
        self._announced = False
        if self.spark_session.settings.start != "none":
            self.shell.push({name: SparkStandIn(self, name) for name in self.spark_names()}, interactive=False)
        if self.spark_session.settings.start == "eager":
            self.spark_session.start()

    def _log_path(self) -> Path | None:
        """The JVM's log beside the connection file: kernel-<id>.json -> kernel-<id>-spark.log."""
        connection_file = getattr(self.parent, "abs_connection_file", None) if self.parent else None
        if not connection_file:
            return None
        return Path(os.path.splitext(connection_file)[0] + "-spark.log")

    def spark_names(self) -> tuple[str, ...]:
        """Spark Connect sessions have no SparkContext, so they get ``spark`` only."""
        return ("spark",) if self.spark_session.settings.remote else ("spark", "sc")

    def spark_object(self, name: str) -> Any:
        """The real object behind ``name``, waiting for the session; swaps it into the namespace."""
        spark = self.spark_session.get()
        self._bind_real_objects(spark)
        return spark if name == "spark" else spark.sparkContext

    def _bind_real_objects(self, spark: Any) -> None:
        user_ns = self.shell.user_ns
        for name in self.spark_names():
            if isinstance(user_ns.get(name), SparkStandIn):
                user_ns[name] = spark if name == "spark" else spark.sparkContext
        self._announce(spark)

    def _announce(self, spark: Any) -> None:
        """Once per session, one line in the running cell: version, master, app id, Spark UI."""
        if self._announced:
            return
        self._announced = True
        facts = describe(spark)
        text = f"Spark {facts['version']} · master {facts['master']} · app {facts['app_id']}"
        html = text
        if facts["ui"]:
            text += f" · Spark UI {facts['ui']}"
            html += f' · <a href="{facts["ui"]}" target="_blank">Spark UI</a>'
        from IPython.display import display

        display({"text/plain": text, "text/html": f"<small>{html}</small>"}, raw=True)

    async def do_execute(self, code: str, silent: bool, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run the cell; when the session is up, the namespace holds the real objects first."""
        if self.spark_session.ready and not silent:
            self._bind_real_objects(self.spark_session.get())
        return await super().do_execute(code, silent, *args, **kwargs)

    def do_shutdown(self, restart: bool) -> dict[str, Any]:
        """Stop Spark and its JVM before the process exits: no java process outlives its kernel."""
        self.spark_session.stop()
        log_path = self.spark_session.settings.log_path
        if log_path is not None and log_path.exists() and self.spark_session._error is None:
            log_path.unlink()
        return super().do_shutdown(restart)


__all__ = ["PySparkKernel", "SparkStandIn", "SparkStartError"]
