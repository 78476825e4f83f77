"""The two CI cells of the Spark x Java matrix (scripts/matrix.py), run through its own functions.

Called in-process, not as a subprocess whose exit code could hide a skipped cell: each must come back
"pass" (install, check, and the notebook with count, SQL, pandas UDF and interrupt on that very Java).
The rest of the matrix runs with ``make matrix``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from conftest import REPO, SPARK_359

pytestmark = pytest.mark.slow


def load_matrix():
    spec = importlib.util.spec_from_file_location("matrix", REPO / "scripts" / "matrix.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["matrix"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


matrix = load_matrix()


def test_ci_cells_are_the_two_the_issue_names() -> None:
    assert matrix.CI_CELLS == ("3.5/17", "4.3/25")
    assert matrix.SPARK_LINES["3.5"] == SPARK_359, "the 3.5 cell reuses the tests' cached 3.5.9"


@pytest.mark.parametrize("name", matrix.CI_CELLS)
def test_ci_cell_passes(name: str, tmp_path: Path, spark_359_home: Path) -> None:
    cell = matrix.Cell.parse(name)
    if matrix.java_for(cell.java) is None:
        pytest.skip(f"no Java {cell.java} under /usr/lib/jvm on this machine: cell {name} cannot run here")
    outcome = matrix.run_cell(cell, tmp_path)
    assert (outcome.status, outcome.cell) == ("pass", cell), outcome.detail
    assert f"Spark {cell.spark_version} on Java {cell.java}." in outcome.detail, outcome.detail


def test_a_pair_spark_does_not_support_is_refused_by_install(tmp_path: Path, spark_359_home: Path) -> None:
    """3.5 on Java 25 is the refused cell that needs no extra download; it checks install's exit 2."""
    if matrix.java_for(25) is None:
        pytest.skip("no Java 25 under /usr/lib/jvm on this machine")
    outcome = matrix.run_cell(matrix.Cell("3.5", 25), tmp_path)
    assert outcome.status == "refused", outcome
    assert "refused by install: Spark 3.5.9 does not run on Java 25" in outcome.detail and "Fix: use Java 17" in outcome.detail, outcome.detail
