"""Completion of Spark's names: in %%sql cells and in a DataFrame's column strings, from a real kernel."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import KernelHarness

from pyspark_kernel.kernel import completion

pytestmark = pytest.mark.slow


def complete(kernel: KernelHarness, code: str, cursor: int | None = None) -> tuple[dict[str, Any], float]:
    """The complete_reply, asked again (as a user presses Tab again) while a cold catalog's first read
    outlives the kernel's deadline; and the longest a reply took."""
    longest = 0.0
    for _ in range(20):
        started = time.monotonic()
        msg_id = kernel.client.complete(code, len(code) if cursor is None else cursor)
        reply = kernel.client.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kernel.client.get_shell_msg(timeout=30)
        longest = max(longest, time.monotonic() - started)
        if reply["content"]["matches"]:
            break
        time.sleep(0.5)
    return reply["content"], longest


def prepare(kernel: KernelHarness) -> KernelHarness:
    """A DataFrame and a view to complete (shared with the Spark Connect kernels' test, tests/test_local_server.py)."""
    kernel.run(
        "from pyspark.sql import functions as F\n"
        "people = spark.createDataFrame([(1, 'ann')], 'person_id long, name string')\n"
        "people.createOrReplaceTempView('people_view')"
    )
    return kernel


@pytest.fixture(scope="module")
def with_data(spark_kernel: KernelHarness) -> KernelHarness:
    return prepare(spark_kernel)


def test_a_sql_cell_completes_tables_views_and_their_columns(with_data: KernelHarness) -> None:
    tables, seconds = complete(with_data, "%%sql\nSELECT * FROM peo")
    assert "people_view" in tables["matches"] and tables["cursor_start"] == len("%%sql\nSELECT * FROM ")
    assert seconds < completion.COMPLETION_SECONDS + 5  # bounded by the deadline (plus messaging), never a session's start
    code = "%%sql\nSELECT na FROM people_view"
    columns, _ = complete(with_data, code, code.index("na") + 2)
    assert columns["matches"] == ["name"]
    frames, _ = complete(with_data, "%%sql\nSELECT * FROM {peo")
    assert frames["matches"] == ["people"]
    databases, _ = complete(with_data, "%%sql\nSHOW TABLES IN def")
    assert "default" in databases["matches"]


def test_a_dataframes_column_strings_complete_its_columns(with_data: KernelHarness) -> None:
    assert complete(with_data, 'people["na')[0]["matches"] == ["name"]
    assert complete(with_data, 'people.select("person_id", "na')[0]["matches"] == ["name"]
    assert complete(with_data, 'people.groupBy("pe')[0]["matches"] == ["person_id"]
    assert "name" in complete(with_data, 'F.col("na')[0]["matches"]
    assert "people" in complete(with_data, "peo")[0]["matches"], "Python names still complete as IPython does"


def test_no_catalog_is_read_while_the_session_starts() -> None:
    found = completion.complete("%%sql\nSELECT * FROM peo", len("%%sql\nSELECT * FROM peo"), {}, None)
    assert found is not None and found.matches == []
