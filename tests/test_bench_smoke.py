"""A smoke run of bench/run.py: it prints its table, a verdict per line, and nothing but progress on stderr.
Timings are never asserted in tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def test_bench_quick_run_prints_its_rows() -> None:
    result = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert table[0] == "| row | this kernel | baseline (same run) | ratio | target | verdict |"
    assert any(line.startswith("| 1 start → kernel_info |") for line in table)
    assert any(line.startswith("| 3 100 × `1+1` |") and "median of 8 interleaved rounds" in line for line in table), (
        "row 3 takes 2 rounds per rep on each of its 2 pairs"
    )
    cells = [line.strip("|").split(" | ") for line in table[2:]]
    assert all("×" in cell[3] for cell in cells), "every row has its ratio"
    assert all(cell[5].strip() == "met" or cell[5].startswith("MISSED (") for cell in cells), "every row says whether its target is met"
    assert "medians of 2 (min-max)" in result.stdout and " cores (" in result.stdout, "the machine and the reps are named"
    # Kernel and JVM output goes to the run's log: stderr holds one progress line per row, nothing else.
    progress = [line for line in result.stderr.splitlines() if line.strip()]
    assert [line.split(":")[0] for line in progress] == ["row 1 (2 reps)", "row 3 (2 reps)"], result.stderr[-2000:]


def bench_servers_left() -> list[int]:
    """Shared Connect servers that a bench run started (their TMPDIR is a run's servers-tmp) still running
    after their run's folder is gone: the rows stop every server they start."""
    import psutil

    left = []
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            if "java" not in (process.info["name"] or "") or not any("SparkConnectServer" in word for word in process.info["cmdline"] or []):
                continue
            tmpdir = process.environ().get("TMPDIR", "")
        except psutil.Error:
            continue
        if tmpdir.endswith("servers-tmp") and not Path(tmpdir).exists():
            left.append(process.pid)
    return left


def test_bench_server_rows_print_their_verdicts_and_stop_their_servers() -> None:
    """Rows 11 and 12 with one rep: the shared server rows run end to end, and leave no server behind."""
    result = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--only", "11", "12", "--reps", "1"], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-2000:]
    table = [line.strip("|").split(" | ") for line in result.stdout.splitlines() if line.startswith("| 1")]
    assert [cells[0].split()[0] for cells in table] == ["11", "12"], result.stdout
    assert all(cells[5].strip() == "met" or cells[5].startswith("MISSED (") for cells in table), result.stdout
    assert bench_servers_left() == [], "a bench row left its shared server running"
