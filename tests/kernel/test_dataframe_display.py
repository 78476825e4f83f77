"""A DataFrame as a cell's result (frametable.py): a table with its column types and its row count.

Classic and Spark Connect kernels run the same checks. The layout rules (Spark's HTML read back, the
show() text rebuilt) are checked without a JVM first, on HTML copied from Spark 4.3's htmlString.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import KernelHarness, connect_kernel_of, spark_conf_set

from pyspark_kernel.kernel import frametable

SPARK_HTML = """<table border='1'>
<tr><th>id</th><th>g&lt;h&gt;</th><th>w</th></tr>
<tr><td>1</td><td>x&lt;b&gt;y&lt;/b&gt;$z$</td><td>中文字</td></tr>
<tr><td>2</td><td>NULL</td><td>[1, NULL]</td></tr>
</table>
only showing top 2 rows
"""
# The same frame's show(2): what pyspark's eager __repr__ gives (full-width characters count twice).
SPARK_TEXT = """+---+------------+---------+
| id|        g<h>|        w|
+---+------------+---------+
|  1|x<b>y</b>$z$|   中文字|
|  2|        NULL|[1, NULL]|
+---+------------+---------+
only showing top 2 rows
"""


def rows_of(spark_html: str, truncate: int = 20) -> frametable.Rows:
    parsed = frametable.parse_spark_html(spark_html)
    assert parsed is not None
    names, cells, more = parsed
    return frametable.Rows(names, ["bigint", "string", "array<int>"], cells, 2, more, truncate)


def test_spark_html_reads_back_to_shows_cells_and_text() -> None:
    rows = rows_of(SPARK_HTML)
    assert rows.names == ["id", "g<h>", "w"] and rows.cells[0] == ["1", "x<b>y</b>$z$", "中文字"] and rows.more
    assert frametable.to_text(rows) == SPARK_TEXT


def test_the_html_has_types_escaped_cells_and_a_row_count() -> None:
    table = frametable.to_html(rows_of(SPARK_HTML))
    assert "<th>g&lt;h&gt;<br><small" in table and ">array&lt;int&gt;</small></th>" in table
    assert "<td>x&lt;b&gt;y&lt;/b&gt;&#36;z&#36;</td>" in table and "$" not in table
    assert table.endswith("first 2 of more rows</small>")
    complete = rows_of(SPARK_HTML.replace("only showing top 2 rows\n", ""))
    assert frametable.to_html(complete).endswith(">2 rows</small>")


def test_an_unknown_layout_is_left_to_pyspark() -> None:
    assert frametable.parse_spark_html("<table><tr><td>1</td></tr></table>") is None


# -- in real kernels -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def connect_kernel(prefix: Path, connect_server: str) -> Iterator[KernelHarness]:
    yield from connect_kernel_of(prefix, connect_server, "connect-frametable")


@pytest.fixture(params=["classic", "connect"])
def kernel(request: pytest.FixtureRequest) -> KernelHarness:
    harness: KernelHarness = request.getfixturevalue("spark_kernel" if request.param == "classic" else "connect_kernel")
    return harness


def shown(kernel: KernelHarness, code: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The cell's result (its mime bundle, {} if none) and its error outputs."""
    outputs = kernel.run(code)["outputs"]
    results = [output["data"] for output in outputs if output["type"] == "execute_result"]
    return (results[-1] if results else {}), [output for output in outputs if output["type"] == "error"]


@pytest.mark.slow
def test_a_long_frame_shows_types_and_the_first_20_of_more(kernel: KernelHarness) -> None:
    kernel.run("big = spark.range(25).selectExpr('id', 'array(cast(id AS string)) AS tags')")
    result, errors = shown(kernel, "big")
    assert not errors, errors
    table = result["text/html"]
    assert ">bigint</small></th>" in table and ">array&lt;string&gt;</small></th>" in table, table
    assert table.count("<tr><td>") == 20 and "<td>[19]</td>" in table
    assert table.endswith("first 20 of more rows</small>"), table
    assert result["text/plain"] == ast.literal_eval(kernel.value("big._show_string(20, 20).rstrip()")), "show()'s own text"


@pytest.mark.slow
def test_a_short_frame_says_how_many_rows(kernel: KernelHarness) -> None:
    result, _ = shown(kernel, "spark.createDataFrame([(1, 'a'), (2, 'b'), (3, 'c')], 'n int, s string')")
    assert result["text/html"].endswith(">3 rows</small>") and ">int</small></th>" in result["text/html"]


@pytest.mark.slow
def test_max_num_rows_set_in_the_notebook_is_respected(kernel: KernelHarness) -> None:
    with spark_conf_set(kernel, "spark.sql.repl.eagerEval.maxNumRows", "5", "20"):
        result, _ = shown(kernel, "spark.range(25)")
    assert result["text/html"].count("<tr><td>") == 5 and result["text/html"].endswith("first 5 of more rows</small>")
    assert result["text/plain"].endswith("only showing top 5 rows")


@pytest.mark.slow
def test_cells_are_escaped_and_nulls_shown_as_show_shows_them(kernel: KernelHarness) -> None:
    result, _ = shown(kernel, "spark.createDataFrame([('<b>bold</b> $x$', None)], 's string, n int')")
    assert "<td>&lt;b&gt;bold&lt;/b&gt; &#36;x&#36;</td><td>NULL</td>" in result["text/html"], result["text/html"]
    assert "|<b>bold</b> $x$|NULL|" in result["text/plain"]


@pytest.mark.slow
def test_with_eager_evaluation_off_a_frame_shows_as_pyspark_shows_it(kernel: KernelHarness) -> None:
    with spark_conf_set(kernel, "spark.sql.repl.eagerEval.enabled", "False", "True"):
        result, _ = shown(kernel, "spark.range(3)")
    assert result == {"text/plain": "DataFrame[id: bigint]"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("code", "condition"), [("spark.range(1).selectExpr('1 / 0 AS boom')", "DIVIDE_BY_ZERO"), ("spark.range(1).select('nope')", "UNRESOLVED_COLUMN")]
)
def test_an_error_while_rendering_is_shown_once(kernel: KernelHarness, code: str, condition: str) -> None:
    """pyspark's two reprs (text, then HTML) each run the query and each show its error; one render, one
    error. (A Connect frame is analysed only then; a classic one raises where it is made, as before.)"""
    result, errors = shown(kernel, code)
    assert len(errors) == 1 and condition in errors[0]["evalue"], errors
    assert result == {}


@pytest.mark.slow
def test_eager_evaluation_is_on_in_both_kinds_of_kernel(kernel: KernelHarness) -> None:
    """A classic kernel sets it at the JVM's launch, a Connect kernel on the session it makes."""
    assert kernel.value("spark.conf.get('spark.sql.repl.eagerEval.enabled')") == "'true'"


@pytest.mark.slow
def test_a_frame_renders_with_one_spark_job(spark_kernel: KernelHarness) -> None:
    """pyspark's text and HTML reprs read the rows once each; one render reads once for both. (One
    partition: Spark's take runs a job per round of partitions it scans.)"""
    jobs = "len(sc.statusTracker().getJobIdsForGroup(sc.getLocalProperty('spark.jobGroup.id')))"
    spark_kernel.run("counted = spark.range(0, 25, 1, numPartitions=1)")
    before = int(spark_kernel.value(jobs))
    result, _ = shown(spark_kernel, "counted")
    assert "text/html" in result and int(spark_kernel.value(jobs)) - before == 1
    # ... and the job is named after the cell that displayed it (the Spark UI, the job view), not pyspark's JVM call
    name = spark_kernel.value("sc._jsc.sc().statusStore().job(max(sc.statusTracker().getJobIdsForGroup(sc.getLocalProperty('spark.jobGroup.id')))).name()")
    assert re.fullmatch(r"'display at In\[\d+\]'", name), name


@pytest.mark.slow
def test_a_classic_kernel_does_not_import_the_connect_client_to_show_frames(spark_kernel: KernelHarness) -> None:
    shown(spark_kernel, "spark.range(1)")
    assert spark_kernel.value("import sys; 'pyspark.sql.connect.dataframe' in sys.modules") == "False"


@pytest.mark.slow
def test_a_sql_cell_shows_the_same_table_whatever_eager_evaluation_says(kernel: KernelHarness) -> None:
    with spark_conf_set(kernel, "spark.sql.repl.eagerEval.enabled", "False", "True"):
        outputs = kernel.run("%%sql -n 2\nSELECT id, repeat('x', 30) AS long FROM range(5)")["outputs"]
    (table,) = [output["data"] for output in outputs if output["type"] == "display_data" and "pyspark_kernel" not in output["metadata"]]
    assert ">bigint</small></th>" in table["text/html"] and table["text/html"].endswith("first 2 of more rows</small>")
    assert f"<td>{'x' * 30}</td>" in table["text/html"], "a SQL cell's values are whole"
