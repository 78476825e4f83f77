"""The names ``spark`` and ``sc`` in the notebook's namespace, and the line that says which session they are.

Until the session is up they are stand-ins that wait for it when touched; from the first cell after it
is up they are the real objects, so ``isinstance`` and libraries that check types work. Once per
session the running cell gets one line: version, master, app id, Spark UI. The controller
(controller.py) calls this around each cell and at a restart; nothing here imports the kernel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pyspark_kernel.kernel.session import ManagedSession

# Outputs the kernel adds to a cell (the session line, progress, notices) carry this metadata key, so
# that tools comparing notebooks, and people reading them, can tell them from the cell's own output.
OWN_OUTPUT = "pyspark_kernel"

logger = logging.getLogger(__name__)


def banner(facts: dict[str, str | None]) -> dict[str, str]:
    text = html = f"Spark {facts['version']} · master {facts['master']} · app {facts['app_id']}"
    if facts["ui"]:
        note = facts.get("ui_note") or ""
        text += f" · Spark UI {facts['ui']}" + (f" ({note})" if note.startswith("open") else "")
        title = f' title="{note}"' if note else ""
        html += f' · <a href="{facts["ui"]}" target="_blank"{title}>Spark UI</a>' + (f" ({note})" if note.startswith("open") else "")
    return {"text/plain": text, "text/html": f"<small>{html}</small>"}


class SparkStandIn:
    """Stands for ``spark`` or ``sc`` while the session starts; any use waits for it, then delegates."""

    def __init__(self, names: SparkNamespace, name: str) -> None:
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_name", name)

    def _target(self) -> Any:
        return self._names.spark_object(self._name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._target(), attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        setattr(self._target(), attribute, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __dir__(self) -> list[str]:
        """Tab completion must not wait for the JVM: offer the class's names until the session is up."""
        if self._names.session.ready:
            return dir(self._target())
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        return dir(SparkSession if self._name == "spark" else SparkContext)

    def __repr__(self) -> str:
        session = self._names.session
        if session.ready:
            return repr(self._target())
        return f"<{self._name}: Spark is {session.state.value}; using it waits for the session>"


class SparkNamespace:
    """The user namespace's names for the session of a ManagedSession, and each session's summary line.

    ``display(data, metadata)`` shows output in the running cell.
    """

    def __init__(self, session: ManagedSession, user_ns: dict[str, Any], display: Callable[[dict[str, str], dict[str, str]], None]) -> None:
        self.session = session
        self.user_ns = user_ns
        self.display = display
        self._announced: Any = None  # the session the one-line summary was shown for
        self._facts: tuple[Any, dict[str, str | None]] | None = None  # (session, what its summary says)

    def push_stand_ins(self) -> None:
        self.user_ns.update({name: SparkStandIn(self, name) for name in self.session.backend.names})

    def spark_object(self, name: str) -> Any:
        """The real object behind ``name``, waiting for the session; swaps it into the namespace."""
        spark = self.session.get()
        self.bind(spark)
        return self.session.backend.namespace(spark)[name]

    def bind(self, spark: Any) -> None:
        """Replace the stand-ins with the real objects, and say which session this is (once)."""
        for name, real in self.session.backend.namespace(spark).items():
            if isinstance(self.user_ns.get(name), SparkStandIn):
                self.user_ns[name] = real
        self.announce(spark)

    def gather_facts(self) -> None:
        """On the start thread, once a start made a session: what the first cell's summary line says (a
        handful of JVM calls, 50 ms of that cell's time otherwise: bench row 8)."""
        spark = self.session.session
        if spark is not None:
            try:
                self._facts = (spark, self.session.backend.describe(spark))
            except Exception:  # announce() asks again, in the cell, and shows what goes wrong there
                pass

    def announce(self, spark: Any) -> None:
        """Once per session, one line in the running cell: version, master, app id, Spark UI."""
        if self._announced is not spark:
            self._announced = spark
            facts = self._facts[1] if self._facts is not None and self._facts[0] is spark else self.session.backend.describe(spark)
            self.display(banner(facts), {OWN_OUTPUT: "banner"})

    def announce_new(self) -> None:
        """After a cell that made a session (a builder in lazy or none mode, or after spark.stop()): say
        so there. Costs a cell that made none one read of pyspark's class state."""
        spark = self.session.session
        if spark is not None and spark is not self._announced and self.session.ready:
            try:
                self.announce(spark)
            except Exception as error:  # the session line is a courtesy; a cell's result must not depend on it
                logger.warning("the session line could not be shown: %s", error, exc_info=True)

    def forget_announced(self) -> None:
        """A restart: the next session gets its line even if pyspark hands back the same object."""
        self._announced = None
