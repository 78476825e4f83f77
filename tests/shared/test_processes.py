"""Telling a process from a later one with its pid, and ending processes (processes.py), on real processes.

No JVM: a process named ``java`` here is ``sleep`` run through a link of that name, which is all a scan
for a kernel's JVMs looks at.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pyspark_kernel import processes, uiroute
from pyspark_kernel.server.kerneljvms import KernelJvms

IGNORES_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(100)"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(["sleep", "100"])
    yield child
    child.kill()
    child.wait()


def identity_of(child: subprocess.Popen[bytes]) -> processes.ProcessIdentity:
    found = processes.identify(child.pid)
    assert found is not None
    return found


def gone(pid: int) -> bool:
    """Exited: reaped, or a zombie (its parent, or pid 1 for an orphan, reaps it when it will)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_live_process_is_itself_within_the_tolerance(sleeper: subprocess.Popen[bytes]) -> None:
    identity = identity_of(sleeper)
    assert processes.is_running(identity)
    assert processes.find(identity) is not None
    wobble = processes.START_TIME_TOLERANCE_SECONDS / 2  # a start time read in another process, a second boundary apart
    assert processes.is_running(processes.ProcessIdentity(identity.pid, identity.create_time + wobble))
    assert processes.is_running(processes.ProcessIdentity(identity.pid, identity.create_time - wobble))


def test_a_reused_pid_is_another_process(sleeper: subprocess.Popen[bytes]) -> None:
    """The pid is live, but the record's start time is another process's: the one recorded is gone."""
    identity = identity_of(sleeper)
    for earlier in (identity.create_time - 2 * processes.START_TIME_TOLERANCE_SECONDS, identity.create_time - 3600):
        assert not processes.is_running(processes.ProcessIdentity(identity.pid, earlier))
        assert processes.find(processes.ProcessIdentity(identity.pid, earlier)) is None


def test_a_dead_pid_and_a_zombie_are_not_running() -> None:
    child = subprocess.Popen(["sleep", "100"])
    identity = identity_of(child)
    child.kill()
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not processes.is_running(identity), "exited, not yet reaped: a zombie is dead"
    child.wait()
    assert not processes.is_running(identity), "exited and reaped"
    assert processes.identify(child.pid) is None


def test_ending_a_group_ends_its_children_and_kills_what_ignores_sigterm() -> None:
    """A group whose leader started two children, one of which ignores SIGTERM: all end, within the wait."""
    leader = subprocess.Popen(["sh", "-c", f'sleep 100 & {sys.executable} -c "{IGNORES_TERM}" & wait'], start_new_session=True, stdout=subprocess.PIPE)
    assert leader.stdout is not None and leader.stdout.readline().strip() == b"ready"
    members = [leader.pid, *(child.pid for child in psutil.Process(leader.pid).children(recursive=True))]
    assert len(members) == 3
    started = time.monotonic()
    try:
        processes.end_group(leader.pid, wait=1.0)
        leader.wait(5)
    finally:
        with contextlib.suppress(OSError):
            os.killpg(leader.pid, signal.SIGKILL)  # whatever a broken end_group left
    assert all(gone(pid) for pid in members), [pid for pid in members if not gone(pid)]  # a zombie waits for its reaper: pid 1 here
    assert time.monotonic() - started < 5, "SIGKILL followed the wait"


def test_end_noted_ends_what_is_still_the_noted_process_and_leaves_a_reused_pid_alone() -> None:
    noted, reused = subprocess.Popen(["sleep", "100"]), subprocess.Popen(["sleep", "100"])
    try:
        other = identity_of(reused)
        processes.end_noted([identity_of(noted), processes.ProcessIdentity(other.pid, other.create_time - 3600)], wait=1.0)
        assert noted.wait(5) == -signal.SIGTERM, "terminated, and its own status still there for its parent (not reaped)"
        assert reused.poll() is None, "a pid that names another process now is not ended"
    finally:
        for child in (noted, reused):
            child.kill()
            child.wait()


def test_end_popen_kills_a_child_that_ignores_sigterm() -> None:
    child = subprocess.Popen([sys.executable, "-c", IGNORES_TERM], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
    try:
        processes.end_popen(child, wait=0.5)
    finally:
        child.kill()
    assert child.returncode == -signal.SIGKILL


def test_a_kernels_jvms_are_noted_and_ended(tmp_path: Path) -> None:
    """KernelJvms (the provisioner's and the pool's) notes the java processes under a kernel and ends them."""
    java = tmp_path / "java"
    java.symlink_to(subprocess.run(["sh", "-c", "command -v sleep"], capture_output=True, text=True, check=True).stdout.strip())
    kernel = subprocess.Popen(["sh", "-c", f"{java} 100 & sleep 100 & wait"], start_new_session=True)
    try:
        jvms = KernelJvms()
        deadline = time.monotonic() + 10
        while not jvms and time.monotonic() < deadline:
            jvms.note(kernel.pid)
        assert len(jvms) == 1, "the java process, not the plain sleep"
        (jvm_pid,) = jvms
        jvms.end()
        assert jvms == {} and gone(jvm_pid)
        assert kernel.poll() is None, "only the noted JVM was ended"
    finally:
        os.killpg(kernel.pid, signal.SIGKILL)  # the plain sleep too
        kernel.wait()


def test_a_route_file_of_a_kernel_whose_pid_was_reused_is_not_loaded(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """uiroute judges the kernel that wrote a route as processes.py does: pid and start time."""
    kernel = identity_of(sleeper)
    route = uiroute.Route(uiroute.new_key(), "t.o.k", os.getpid(), 0.0, os.getuid(), 4999, kernel.pid, kernel.create_time)
    assert uiroute.load(uiroute.write_route(route, tmp_path)) == route
    reused = uiroute.Route(route.key, route.token, route.jvm_pid, 0.0, route.uid, route.port, kernel.pid, kernel.create_time - 3600)
    assert uiroute.load(uiroute.write_route(reused, tmp_path)) is None
