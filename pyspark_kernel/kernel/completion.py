"""Spark's names while typing: tables, views, databases and columns in ``%%sql`` cells, and a DataFrame's
columns in ``df["…"]``, ``df.select("…")`` and ``F.col("…")``.

IPython completes Python names; inside a ``%%sql`` cell or a string that names a column it has nothing
to offer. These come from the catalog and DataFrame schemas, which Spark answers without running a job,
from a thread with a deadline (COMPLETION_SECONDS), and never from a session that is still starting:
a completion that waited for Spark would leave the editor's menu hanging. Anything else goes to IPython.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

COMPLETION_SECONDS = 0.8  # a catalog read's deadline: JupyterLab drops a provider that answers after its providerTimeout, 1000 ms
MAX_FRAMES = 20  # DataFrames of the namespace whose columns F.col("…") offers
SQL_CELL = re.compile(r"\A\s*%%sql\b[^\n]*\n", re.IGNORECASE)
SQL_WORD = re.compile(r"[A-Za-z_][\w.]*\Z|\Z")
TABLE_NAMED = re.compile(r"\b(?:FROM|JOIN|TABLE|INTO|DESCRIBE)\s+`?([A-Za-z_][\w.]*)`?", re.IGNORECASE)
FRAME_REFERENCE = re.compile(r"\{([A-Za-z_]\w*)\}")
FRAME_STRING = re.compile(
    r"(?P<frame>[A-Za-z_]\w*)\s*(?:\[|\.(?:select|drop|groupBy|groupby|orderBy|sort|dropDuplicates|withColumnRenamed)\s*\((?:[^()]*?,\s*)?)"
    r"\s*[\"'](?P<prefix>[^\"'\n]*)\Z"
)
COLUMN_CALL = re.compile(r"\b(?:col|column)\(\s*[\"'](?P<prefix>[^\"'\n]*)\Z")


@dataclass(frozen=True)
class Completion:
    matches: list[str]
    start: int
    end: int
    kind: str  # "table", "column": what JupyterLab shows beside each match

    def reply(self) -> dict[str, Any]:
        items = [{"start": self.start, "end": self.end, "text": match, "type": self.kind, "signature": ""} for match in self.matches]
        return {
            "matches": self.matches,
            "cursor_start": self.start,
            "cursor_end": self.end,
            "metadata": {"_jupyter_types_experimental": items},
            "status": "ok",
        }


def reply_for(code: str, cursor_pos: int | None, namespace: Mapping[str, Any], session: Any) -> dict[str, Any] | None:
    """The kernel's complete_reply where Spark's names apply, or None for IPython's (a string of column
    names that found none falls back to IPython, a %%sql cell never does: Python names mean nothing there)."""
    cursor = len(code) if cursor_pos is None else cursor_pos
    found = complete(code, cursor, namespace, session.session if session.ready else None)
    if found is None or (not found.matches and not SQL_CELL.match(code)):
        return None
    return found.reply()


def is_dataframe(value: Any) -> bool:
    kind = type(value)
    return kind.__name__ == "DataFrame" and kind.__module__.startswith("pyspark.sql")


def complete(code: str, cursor: int, namespace: Mapping[str, Any], spark: Any) -> Completion | None:
    """Spark's completions at ``cursor``, or None where IPython's apply. ``spark``: the session if it is up."""
    before = code[:cursor]
    if SQL_CELL.match(code) and "\n" in before:
        return sql_names(code, before, cursor, namespace, spark)
    found = FRAME_STRING.search(before)
    if found and is_dataframe(namespace.get(found.group("frame"))):
        frame = namespace[found.group("frame")]
        columns = within_deadline(f"columns:{id(frame)}", lambda: list(frame.columns))
        return starting_with(columns or [], found.group("prefix"), cursor, "column", case=True)
    call = COLUMN_CALL.search(before)
    if call:
        frames = [value for value in namespace.values() if is_dataframe(value)][:MAX_FRAMES]
        key = "columns:" + ",".join(str(id(frame)) for frame in frames)
        columns = within_deadline(key, lambda: sorted({column for frame in frames for column in frame.columns}))
        return starting_with(columns or [], call.group("prefix"), cursor, "column", case=True)
    return None


def sql_names(code: str, before: str, cursor: int, namespace: Mapping[str, Any], spark: Any) -> Completion:
    """Tables, views and databases of the catalog, columns of the tables and {DataFrames} the cell names,
    and the notebook's DataFrames after a ``{``."""
    word = SQL_WORD.search(before)
    prefix = word.group(0) if word else ""
    if before[: cursor - len(prefix)].endswith("{"):
        return starting_with([name for name, value in namespace.items() if is_dataframe(value)], prefix, cursor, "dataframe", case=True)
    if spark is None:
        return Completion([], cursor, cursor, "table")

    def read() -> list[str]:
        catalog = spark.catalog
        names = [table.name for table in catalog.listTables()] + [database.name for database in catalog.listDatabases()]
        for table in TABLE_NAMED.findall(code):
            try:
                names += spark.table(table).columns
            except Exception:  # a name still being typed, or not a table: no columns from it
                continue
        for name in FRAME_REFERENCE.findall(code):
            if is_dataframe(namespace.get(name)):
                names += namespace[name].columns
        return sorted(set(names))

    key = f"sql:{id(spark)}:{sorted(TABLE_NAMED.findall(code))}:{sorted(FRAME_REFERENCE.findall(code))}"
    return starting_with(within_deadline(key, read) or [], prefix, cursor, "table", case=False)


def starting_with(names: list[str], prefix: str, cursor: int, kind: str, case: bool) -> Completion:
    wanted = prefix if case else prefix.lower()
    matches = [name for name in names if (name if case else name.lower()).startswith(wanted)]
    return Completion(matches, cursor - len(prefix), cursor, kind)


FRESH_SECONDS = 5.0  # a read answers the completions asked this soon after it: a view made since shows in seconds
_reads: dict[str, tuple[float, list[str]]] = {}  # what each read found, and when
_running: dict[str, threading.Thread] = {}
_lock = threading.Lock()


def within_deadline(key: str, read: Callable[[], list[str]]) -> list[str] | None:
    """``read()`` on a thread of its own, or None if Spark has not answered within COMPLETION_SECONDS.

    A read that outlives the deadline (a cold catalog's first answer takes seconds) goes on, and the next
    completion of the same thing, a second press of Tab, gets its answer at once."""
    with _lock:
        found = _reads.get(key)
        if found is not None and time.monotonic() - found[0] < FRESH_SECONDS:
            return found[1]
        thread = _running.get(key)
        if thread is None:
            thread = _running[key] = threading.Thread(target=_read, args=(key, read), name="pyspark-kernel-complete", daemon=True)
            thread.start()
    thread.join(COMPLETION_SECONDS)
    with _lock:
        found = _reads.get(key)
        return found[1] if found is not None and not thread.is_alive() else None


def _read(key: str, read: Callable[[], list[str]]) -> None:
    try:
        names = read()
    except Exception:  # a catalog that cannot be read offers nothing: the editor must not show an error
        names = []
    with _lock:
        _reads[key] = (time.monotonic(), names)
        _running.pop(key, None)
