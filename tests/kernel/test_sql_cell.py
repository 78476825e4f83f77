"""%%sql: Python variables by {name} as spark.sql's kwargs, and an error as one message at its line."""

from __future__ import annotations

import pytest
from conftest import KernelHarness

from pyspark_kernel.kernel import sqlcell


def test_names_in_braces_are_the_notebooks_variables() -> None:
    assert sqlcell.references("SELECT * FROM {df} WHERE id > {low}", {"df": "D", "low": 3, "x": 1}) == {"df": "D", "low": 3}


@pytest.mark.parametrize("cell", ["SELECT 1", "SELECT '{\"a\": 1}' AS j", "SELECT '{' AS brace", "SELECT '{{}}'"])
def test_a_cell_without_plain_names_in_braces_is_sent_as_written(cell: str) -> None:
    assert sqlcell.references(cell, {}) == {}


def test_a_name_that_is_no_variable_is_one_message() -> None:
    with pytest.raises(sqlcell.SqlCellError, match=r"\{nope\} in this %%sql cell names no Python variable"):
        sqlcell.references("SELECT * FROM {nope}", {})


class ParseException(Exception):
    """Stands for pyspark's ParseException (whose message this copies), so the rule is tested without a JVM."""


def test_a_parse_errors_place_comes_from_its_message() -> None:
    error = ParseException("\n[PARSE_SYNTAX_ERROR] Syntax error at or near 't'. SQLSTATE: 42601 (line 2, pos 6)\n\n== SQL ==\n...")
    explained = sqlcell.explain(error, "SELECT *\nFROMM t")
    assert explained is not None
    assert str(explained).startswith("[PARSE_SYNTAX_ERROR] Syntax error at or near 't'.\n  at line 2, column 7 of the cell:\n    FROMM t\n          ^")
    assert sqlcell.explain(ValueError("x"), "SELECT 1") is None


@pytest.mark.slow
def test_sql_cells_in_a_kernel(spark_kernel: KernelHarness) -> None:
    check_sql_cells(spark_kernel)


def check_sql_cells(kernel: KernelHarness) -> None:
    """Shared with the Spark Connect kernels' tests (tests/test_local_server.py)."""
    kernel.run("people = spark.createDataFrame([(1, 'ann'), (2, 'bob'), (3, 'cy')], 'id long, name string')\nlow = 1")
    result = kernel.run("%%sql -o picked\nSELECT name FROM {people} WHERE id > {low} ORDER BY id")
    assert not [o for o in result["outputs"] if o["type"] == "error"], result
    assert kernel.value("[r.name for r in picked.collect()]") == "['bob', 'cy']"
    error = kernel.error("%%sql\nSELECT name\nFROM no_such_table")
    assert error["ename"] == "SqlCellError" and len(error["traceback"]) == 1, error
    assert "TABLE_OR_VIEW_NOT_FOUND" in error["evalue"] and "at line 2, column 6 of the cell" in error["evalue"], error["evalue"]
    syntax = kernel.run("%%sql\nSELECT *\nFROMM t")
    (shown,) = [o for o in syntax["outputs"] if o["type"] == "error"]
    assert "PARSE_SYNTAX_ERROR" in shown["evalue"] and "at line 2" in shown["evalue"]
    assert not [o for o in syntax["outputs"] if o["type"] == "stream" and "at org.apache" in o["text"]], "no Java stack in the cell"


@pytest.mark.slow
def test_a_sql_cell_leaves_pysparks_error_logger_working(spark_kernel: KernelHarness) -> None:
    """%%sql quiets pyspark's query-context logger; made as a plain Logger first, pyspark's later
    spark.sql(...) errors failed inside their own logging ("unexpected keyword argument 'errorClass'")."""
    spark_kernel.run("%%sql\nSELECT 1")
    error = spark_kernel.error("spark.sql('SELECT * FROM no_such_table_either').collect()")
    assert error["ename"] == "AnalysisException", error
