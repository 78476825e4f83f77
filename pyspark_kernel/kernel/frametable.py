"""A DataFrame as a cell's result: a table whose header gives each column's type, and how many rows it shows.

pyspark's own eager evaluation (``spark.sql.repl.eagerEval.enabled``, on in this kernel) shows a
``<table border='1'>`` without types, and IPython asks it twice, text then HTML: the rows are read
twice per DataFrame. Here one render reads them once, through pyspark's own ``DataFrame._repr_html_``
(Spark's ``htmlString``: the cells of ``show()`` as Spark formats them, ``maxNumRows + 1`` rows taken,
cells cut at ``truncate``), reads its cells back, and writes both:

- text/plain: the very text ``show()`` prints (and pyspark's eager ``__repr__`` gives), laid out here
  from the same cells, so text frontends and saved notebooks read as before;
- text/html: the column names with their types (``simpleString()``) under them, the cells escaped
  (``$`` too: JupyterLab typesets ``$…$`` as LaTeX), and "first 20 of more rows" or "3 rows".

Classic and Spark Connect DataFrames alike (both render through pyspark's ``_repr_html_``). With eager
evaluation off the DataFrame shows as pyspark shows it, ``DataFrame[id: bigint]``. An error while
rendering (a Connect analysis error, a failing UDF) is shown once by IPython, as for any formatter,
instead of twice as pyspark's two reprs do. A ``%%sql`` cell (magics.py) shows the same table, of its
``-n`` rows with values whole (``read_first``).
"""

from __future__ import annotations

import html
import re
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyspark_kernel.kernel.progress_display import escaped

EAGER_KEYS = ("spark.sql.repl.eagerEval.enabled", "spark.sql.repl.eagerEval.maxNumRows", "spark.sql.repl.eagerEval.truncate")
# The classes to render, by name: registering must import neither pyspark nor its Connect client. Each
# concrete class is named: IPython's text/plain printer takes a class's own __repr__ before a printer
# registered for its base. (pyspark 4: classic, Connect; 3.5: the first is the classic class.)
FRAME_CLASSES = (
    ("pyspark.sql.classic.dataframe", "DataFrame"),
    ("pyspark.sql.connect.dataframe", "DataFrame"),
    ("pyspark.sql.dataframe", "DataFrame"),
)
# Spark's htmlString, one line a row: "<tr><th>a</th><th>b</th></tr>" (escapeHtml4: no "<" inside a cell).
SPARK_ROW = re.compile(r"<tr><(t[hd])>(.*)</\1></tr>")
SPARK_MORE = re.compile(r"only showing top (\d+) rows?")
# Spark's Utils.stringHalfWidth: these characters take two columns in show()'s layout.
FULL_WIDTH = re.compile("[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe10-\ufe19\ufe30-\ufe6f\uff00-\uff60\uffe0-\uffe6]")
CSS_CLASS = "pyspark-kernel-dataframe"  # tests/notebooks/record.py recognises the table by it


@dataclass(frozen=True)
class Rows:
    """What one render read: the header and cells as show() has them, and whether more rows exist."""

    names: list[str]
    types: list[str]
    cells: list[list[str]]
    limit: int  # maxNumRows: at most this many rows are shown
    more: bool  # the frame has more rows than shown
    truncate: int  # eagerEval.truncate: > 0 right-aligns show()'s columns, 0 left-aligns them


def eager_settings(session: Any) -> tuple[bool, int, int]:
    """(enabled, maxNumRows, truncate) in one call, as pyspark's reprs read them: a JVM call for a
    classic session, one RPC for a Connect one; the public conf (one call a key) where neither exists."""
    try:
        client = getattr(session, "_client", None)  # Spark Connect
        values = list(client.get_configs(*EAGER_KEYS) if client is not None else session._jconf.getConfs(list(EAGER_KEYS)))
    except Exception:  # Spark 3.5 has no getConfs
        values = [session.conf.get(key) for key in EAGER_KEYS]
    enabled, max_rows, truncate = values
    return str(enabled).lower() == "true", int(max_rows), int(truncate)


def read(frame: Any) -> Rows | None:
    """A cell's result: its one read; None if eager evaluation is off or Spark's HTML is not as expected.

    pyspark's ``_repr_html_`` reads the settings and gives None when eager evaluation is off (and from
    then on the frame's ``repr`` is ``DataFrame[...]`` without asking again); the settings are read
    again here only for a table, for show()'s alignment: two small calls, one read of rows."""
    spark_html = frame._repr_html_()  # Spark's htmlString: the show() cells of maxNumRows + 1 rows
    if not spark_html:
        return None
    _, max_rows, truncate = eager_settings(frame.sparkSession)
    return table_rows(frame, spark_html, max_rows, truncate)


def read_first(frame: Any, limit: int, truncate: int = 0) -> Rows | None:
    """A %%sql cell's rows: the first ``limit``, values whole, whatever eager evaluation says; the same
    htmlString read as ``_repr_html_`` makes (pyspark's call, with the row count given)."""
    if type(frame).__module__.startswith("pyspark.sql.connect"):
        from pyspark.sql.connect import plan
        from pyspark.sql.connect.dataframe import DataFrame

        html_frame = DataFrame(plan.HtmlString(child=frame._plan, num_rows=limit, truncate=truncate), session=frame._session)
        spark_html = html_frame._to_table()[0][0][0].as_py()
    else:
        spark_html = frame._jdf.htmlString(limit, truncate)
    return table_rows(frame, spark_html, limit, truncate)


def table_rows(frame: Any, spark_html: str, max_rows: int, truncate: int) -> Rows | None:
    """Spark's HTML of the frame as Rows, with the frame's column types; None for an unknown layout."""
    parsed = parse_spark_html(spark_html)
    if parsed is None:
        return None
    names, cells, more = parsed
    types = [field.dataType.simpleString() for field in frame.schema.fields]
    return Rows(names, types, cells, max_rows, more, truncate) if len(types) == len(names) else None


def parse_spark_html(spark_html: str) -> tuple[list[str], list[list[str]], bool] | None:
    """Spark's htmlString back to (header, cells, more rows?); None for a layout this does not know."""
    header: list[str] | None = None
    cells: list[list[str]] = []
    more = False
    for line in spark_html.splitlines():
        row = SPARK_ROW.fullmatch(line)
        if row is not None:
            tag = row.group(1)
            values = [html.unescape(value) for value in row.group(2).split(f"</{tag}><{tag}>")]
            if tag == "th" and header is None:
                header = values
            elif tag == "td" and header is not None:
                cells.append(values)
            else:
                return None
        elif SPARK_MORE.fullmatch(line):
            more = True
        elif line not in ("<table border='1'>", "</table>", ""):
            return None
    if header is None or any(len(row) != len(header) for row in cells):
        return None
    return header, cells, more


# -- writing ---------------------------------------------------------------------------------------
def footer(rows: Rows) -> str:
    if rows.more:
        return f"first {len(rows.cells)} of more rows"
    return f"{len(rows.cells)} row" + ("" if len(rows.cells) == 1 else "s")


def to_html(rows: Rows) -> str:
    head = "".join(
        f'<th>{escaped(name)}<br><small style="font-weight:normal;opacity:0.7">{escaped(kind)}</small></th>'
        for name, kind in zip(rows.names, rows.types, strict=True)
    )
    body = "".join("<tr>" + "".join(f"<td>{escaped(cell)}</td>" for cell in row) + "</tr>\n" for row in rows.cells)
    return (
        f'<table class="{CSS_CLASS}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n'
        f'<small class="{CSS_CLASS}-rows">{footer(rows)}</small>'
    )


def width(cell: str) -> int:
    """show()'s width of a cell: Java string length, full-width characters twice."""
    return len(cell.encode("utf-16-le")) // 2 + len(FULL_WIDTH.findall(cell))


def to_text(rows: Rows) -> str:
    """Spark's showString(maxNumRows, truncate), character for character, from the same cells."""
    table = [rows.names, *rows.cells]
    widths = [max(3, *(width(row[column]) for row in table)) for column in range(len(rows.names))]

    def line(row: list[str]) -> str:
        padded = [" " * (size - width(cell)) + cell if rows.truncate > 0 else cell + " " * (size - width(cell)) for cell, size in zip(row, widths, strict=True)]
        return "|" + "|".join(padded) + "|\n"

    rule = "+" + "+".join("-" * size for size in widths) + "+\n"
    text = rule + line(rows.names) + rule + "".join(line(row) for row in rows.cells) + rule
    if rows.more:
        text += f"only showing top {rows.limit} row{'' if rows.limit == 1 else 's'}\n"
    return text


# -- IPython's formatters ----------------------------------------------------------------------------
FAILED = "failed"  # a render that raised: IPython has shown the error, the HTML is not tried again


class FrameFormatters:
    """IPython's text/plain and text/html formatters for DataFrames, sharing one render.

    IPython calls the text/plain formatter, then the text/html one, for each result: the first renders
    (one read of the rows) and keeps what it read for the second; alone (``display(df, include=[...])``) either
    renders by itself. A render that raised is not run again for the HTML: IPython has shown the error.
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._kept: tuple[Any, int, Rows | str | None] | None = None  # (frame's weakref, cell, its render or FAILED)

    def render(self, frame: Any) -> Rows | None:
        try:
            with display_call_site(frame, self.shell.execution_count):
                rows = read(frame)
        except BaseException:
            self._keep(frame, FAILED)  # not the error: its traceback would keep the frame alive
            raise
        self._keep(frame, rows)
        return rows

    def _keep(self, frame: Any, outcome: Rows | str | None) -> None:
        try:
            self._kept = (weakref.ref(frame), self.shell.execution_count, outcome)
        except TypeError:  # a frame that takes no weak reference: the HTML renders again
            self._kept = None

    def _take(self, frame: Any) -> tuple[bool, Rows | str | None]:
        kept, self._kept = self._kept, None
        if kept is not None and kept[0]() is frame and kept[1] == self.shell.execution_count:
            return True, kept[2]
        return False, None

    def plain(self, frame: Any, printer: Any, cycle: bool) -> None:
        rows = self.render(frame)
        printer.text(to_text(rows).rstrip("\n") if rows is not None else repr(frame))

    def html(self, frame: Any) -> str | None:
        found, outcome = self._take(frame)
        if not found:
            outcome = self.render(frame)
        return to_html(outcome) if isinstance(outcome, Rows) else None


@contextmanager
def display_call_site(frame: Any, cell: int) -> Iterator[None]:
    """Name the display's job ``display at In[5]`` (the Spark UI, the job view) as the cell's own jobs are
    named (pyspark_hooks.py): pyspark's ``_repr_html_`` sets no call site, and the job would read
    ``htmlString at NativeMethodAccessorImpl.java:0``. Classic only: a Connect server names its jobs."""
    context = vars(frame).get("_sc")  # getattr would not do: a Connect DataFrame answers any name with a Column
    if context is None:
        yield
        return
    context._jsc.setCallSite(f"display at In[{cell}]")
    try:
        yield
    finally:
        context._jsc.setCallSite(None)


def register(shell: Any) -> FrameFormatters:
    """Show DataFrames through FrameFormatters in this IPython shell (by class name: no import)."""
    formatters = FrameFormatters(shell)
    by_mime = shell.display_formatter.formatters
    for module, name in FRAME_CLASSES:
        by_mime["text/plain"].for_type_by_name(module, name, formatters.plain)
        by_mime["text/html"].for_type_by_name(module, name, formatters.html)
    return formatters
