"""What ``%%sql`` adds to ``spark.sql``: Python variables by ``{name}``, and an error as one message at its line.

pyspark's ``spark.sql(query, **kwargs)`` already formats ``{name}`` with Python values, a DataFrame
becoming a temporary view; a ``%%sql`` cell takes them from the notebook's namespace, so
``SELECT * FROM {df} WHERE id > {low}`` works as it does in a ``spark.sql(...)`` call. A cell whose
braces are not all plain names (a JSON literal, ``{"a": 1}``) is sent as written.

A syntax or analysis error is shown as the error's first line, where it is in the cell (line and
column, with the line and a caret) and what to do, instead of a traceback through the magic and
pyspark and the Java stack that pyspark's query-context logger writes to the cell's stderr.
Nothing here imports pyspark.
"""

from __future__ import annotations

import contextlib
import logging
import re
import string
from collections.abc import Iterator, Mapping
from typing import Any

from pyspark_kernel.errors import Problem

QUERY_CONTEXT_LOGGER = "SQLQueryContextLogger"  # pyspark's logger of a failed query's Java stack
EXPLAINED = ("ParseException", "AnalysisException")  # pyspark's, classic and Connect alike
POSITION = re.compile(r"\(line (\d+), pos (\d+)\)")  # ParseException's own words: pos counts from 0
FIXES = {
    "PARSE_SYNTAX_ERROR": "correct the SQL there (a %%sql cell runs one statement).",
    "TABLE_OR_VIEW_NOT_FOUND": "check the name (SHOW TABLES lists the tables and views), or use a DataFrame of this notebook as {name}.",
    "UNRESOLVED_COLUMN": "use a column the table has; the message names the closest ones.",
}


class SqlCellError(Problem, ValueError):
    """A ``%%sql`` cell's SQL is wrong: where, and the fix."""


def references(cell: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The Python values a cell's ``{name}`` fields name, for spark.sql's kwargs; {} to send it as written."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(cell) if field is not None]
    except ValueError:  # a lone brace: not a template
        return {}
    if not fields or not all(field.isidentifier() for field in fields):
        return {}
    missing = [field for field in fields if field not in namespace]
    if missing:
        raise SqlCellError(
            f"{{{missing[0]}}} in this %%sql cell names no Python variable of the notebook.",
            f"define {missing[0]} in a cell before, or write {{{{ and }}}} for braces meant literally.",
        )
    return {field: namespace[field] for field in fields}


@contextlib.contextmanager
def quiet_query_log() -> Iterator[None]:
    """pyspark logs a failed query's whole Java stack to stderr, which a notebook shows: the cell's one
    message says it instead."""
    try:  # pyspark's own class: a plain logging.Logger made first under its name would break pyspark's calls to it
        from pyspark.logger import PySparkLogger
    except ImportError:  # Spark 3.5 has no such logger
        yield
        return
    logger = PySparkLogger.getLogger(QUERY_CONTEXT_LOGGER)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def explain(error: BaseException, cell: str) -> SqlCellError | None:
    """A syntax or analysis error of the cell as one message at its place; None for any other error."""
    if type(error).__name__ not in EXPLAINED:
        return None
    text = str(error).strip()
    headline = re.split(r"\s*SQLSTATE: \w+", text.splitlines()[0] if text else type(error).__name__)[0].strip()
    place = position(error, cell)
    condition = str(getattr(error, "getCondition", lambda: "")() or "")
    fix = FIXES.get(condition.split(".")[0], "correct the SQL there.")
    if place is None:
        return SqlCellError(headline, fix)
    line, column = place
    source = cell.splitlines()[line - 1] if 0 < line <= len(cell.splitlines()) else ""
    return SqlCellError(f"{headline}\n  at line {line}, column {column} of the cell:\n    {source}\n    {' ' * (column - 1)}^", fix)


def position(error: BaseException, cell: str) -> tuple[int, int] | None:
    """(line, column), both from 1, of the error in the cell: from its query context, else its message."""
    try:
        contexts = error.getQueryContext()  # type: ignore[attr-defined]
        start = contexts[0].startIndex() if contexts else -1
    except Exception:
        start = -1
    if 0 <= start <= len(cell):
        before = cell[:start]
        return before.count("\n") + 1, start - (before.rfind("\n") + 1) + 1
    found = POSITION.search(str(error))
    return (int(found.group(1)), int(found.group(2)) + 1) if found else None
