"""A smoke run of bench/run.py: it prints its table, a verdict per line, and nothing but progress on stderr.
Timings are never asserted in tests."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def test_bench_quick_run_prints_its_rows() -> None:
    result = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert table[0] == "| row | this kernel | baseline (same run) | ratio | target | verdict |"
    assert any(line.startswith("| 1 start → kernel_info |") for line in table)
    assert any(line.startswith("| 3 100 × `1+1` |") and "median of 8 rounds" in line for line in table), "row 3 takes 2 rounds per rep on each of its 2 pairs"
    cells = [line.strip("|").split(" | ") for line in table[2:]]
    assert all("×" in cell[3] for cell in cells), "every row has its ratio"
    assert all(cell[5].strip() == "met" or cell[5].startswith("MISSED (") for cell in cells), "every row says whether its target is met"
    assert "medians of 2 (min-max)" in result.stdout and " cores (" in result.stdout, "the machine and the reps are named"
    # Kernel and JVM output goes to the run's log: stderr holds one progress line per row, nothing else.
    progress = [line for line in result.stderr.splitlines() if line.strip()]
    assert [line.split(":")[0] for line in progress] == ["row 1 (2 reps)", "row 3 (2 reps)"], result.stderr[-2000:]
