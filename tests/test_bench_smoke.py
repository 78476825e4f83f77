"""A smoke run of bench/run.py: it prints its table. Timings are never asserted in tests."""

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
    assert table[0].startswith("| row | this kernel | baseline (same run) | ratio | target |")
    assert any(line.startswith("| 1 start → kernel_info |") for line in table)
    assert any(line.startswith("| 3 100 × `1+1` |") for line in table)
    assert all("×" in line.split("|")[4] for line in table[2:]), "every row has its ratio"
