"""ports.py: a UI port one kernel holds is not picked by another, whichever Jupyter server started it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from pyspark_kernel import ports


@pytest.fixture
def own_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return tmp_path


def test_a_held_port_is_skipped_by_a_kernel_of_another_runtime_folder(own_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two Jupyter servers of one user, each with its own runtime folder, start kernels together: the
    second pick must not be the port the first holds (it was, and Spark then bound the next port)."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(own_tmp / "server-one"))
    first = ports.reserve_port(47100)
    try:
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(own_tmp / "server-two"))
        second = ports.reserve_port(first.port)
        try:
            assert second.port != first.port
        finally:
            second.release()
    finally:
        first.release()
    assert ports.lock_folder().stat().st_mode & 0o777 == 0o700


def test_a_lock_folder_name_taken_by_something_else_falls_back_to_the_runtime_folder(own_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(own_tmp / "runtime"))
    (own_tmp / "elsewhere").mkdir()
    (own_tmp / "tmp" / f"pyspark-kernel-ports-{os.getuid()}").symlink_to(own_tmp / "elsewhere")
    assert ports.lock_folder() == own_tmp / "runtime" / "pyspark-kernel-ports"
