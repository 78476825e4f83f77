"""localserver.py's rules, without a server: which kernelspecs share a server, which kernels hold it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pyspark_kernel import localserver


@pytest.mark.parametrize("remote", ["local", "local[*]", "local[4]"])
def test_local_remotes(remote: str) -> None:
    assert localserver.is_local_remote(remote)


@pytest.mark.parametrize("remote", [None, "", "sc://h:15002", "local[0]", "local[x]", "local-cluster[2,1,1024]", "yarn"])
def test_not_local_remotes(remote: str | None) -> None:
    assert not localserver.is_local_remote(remote)


def test_two_spark_versions_or_homes_or_server_settings_get_two_servers() -> None:
    base = localserver.place_for("/opt/spark", "4.3.0", "local[*]", "--master 'local[*]' pyspark-shell")
    assert base == localserver.place_for("/opt/spark", "4.3.0", "local[*]", "--master 'local[*]' pyspark-shell")
    others = {
        localserver.place_for("/opt/spark", "4.3.1", "local[*]", "--master 'local[*]' pyspark-shell"),
        localserver.place_for("/opt/spark-b", "4.3.0", "local[*]", "--master 'local[*]' pyspark-shell"),
        localserver.place_for("/opt/spark", "4.3.0", "local[2]", "--master 'local[*]' pyspark-shell"),
        localserver.place_for("/opt/spark", "4.3.0", "local[*]", "--master 'local[*]' --driver-memory 4g pyspark-shell"),
    }
    assert base not in others and len(others) == 4
    assert all(place.folder.parent == localserver.root() for place in others)


def test_a_lease_of_a_kernel_that_died_does_not_keep_the_server(tmp_path: Path) -> None:
    place = localserver.ServerPlace(tmp_path / "server")
    place.make()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mine = localserver.take_lease(place)
        theirs = localserver.take_lease(place, child.pid)
        assert {lease.pid for lease in localserver.live_leases(place)} == {child.pid, mine_pid(mine)}
    finally:
        child.kill()
        child.wait()
    assert [lease.pid for lease in localserver.live_leases(place)] == [mine_pid(mine)]
    assert not theirs.exists(), "a dead kernel's lease is removed"
    mine.unlink()
    assert localserver.live_leases(place) == []


def mine_pid(lease: Path) -> int:
    return int(lease.name.split("-")[0])


def test_folders_are_private_and_another_users_folder_is_refused(tmp_path: Path) -> None:
    place = localserver.ServerPlace(tmp_path / "server")
    place.make()
    assert place.folder.stat().st_mode & 0o777 == 0o700 and place.leases.stat().st_mode & 0o777 == 0o700
    (tmp_path / "link").symlink_to(tmp_path / "server")
    with pytest.raises(PermissionError):
        localserver.ServerPlace(tmp_path / "link").make()


def test_status_of_a_folder_without_a_server(tmp_path: Path) -> None:
    status = localserver.status(localserver.ServerPlace(tmp_path / "none"))
    assert status.pid is None and status.kernels == 0 and "not running" in status.line()
