"""Each JVM's temp files in a folder of its own, so that what a killed JVM leaves is found and removed.

A JVM that exits normally deletes its ``spark-*``, ``blockmgr-*`` and ``artifacts-*`` dirs in its
shutdown hooks; one killed with SIGKILL (the kernel OOM killer) leaves them in the temp dir, cached
blocks included, with names that say nothing of whose they were. So, unless the user chose Spark's
local dirs (``spark.local.dir``, ``SPARK_LOCAL_DIRS``), every JVM the kernel launches gets one folder,
``$TMPDIR/pyspark-kernel-<uid>/<kernel pid>-<kernel start>-<random>``, as its ``spark.local.dir`` and
its ``java.io.tmpdir``: everything it and pyspark's driver write for it lands inside.

A folder is judged by what is recorded in it (``owner.json``), never by its name or age: the kernel
process that made it, and once launched the JVM, each as pid + start time (a reused pid is another
process). A folder whose JVM has exited, or whose kernel exited before launching one, is a leftover;
one of another user, another boot or another PID namespace (a container sharing /tmp) is never judged.
Kernel starts remove leftovers in the background; ``pyspark-kernel check`` counts them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pyspark_kernel.processes import ProcessIdentity, identify, is_running

logger = logging.getLogger(__name__)

RECORD = "owner.json"
# A record names its processes as processes.py tells them apart (pid + start time, with its tolerance);
# Process, describe and is_running are that module's identity, identify and is_running under the names
# launchdirs.py and the sweep read here.
Process = ProcessIdentity
describe = identify


def uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else 0


def user_root(environ: Mapping[str, str] | None = None) -> Path:
    """This user's folder of JVM folders, under the temp dir the kernel's Python uses."""
    base = (environ or {}).get("TMPDIR") or tempfile.gettempdir()
    return Path(base) / f"pyspark-kernel-{uid()}"


def user_chose_local_dirs(conf: Mapping[str, str], environ: Mapping[str, str]) -> bool:
    """True when the user (or an admin, in spark-defaults.conf) said where Spark writes: then the
    kernel leaves it alone. SPARK_LOCAL_DIRS from spark-env.sh needs no check: it outranks the conf."""
    return bool(conf.get("spark.local.dir") or environ.get("SPARK_LOCAL_DIRS")) or defaults_file_sets_local_dir(environ)


def defaults_file_sets_local_dir(environ: Mapping[str, str]) -> bool:
    """Whether spark-defaults.conf (in SPARK_CONF_DIR, else SPARK_HOME/conf) sets spark.local.dir."""
    conf_dir = environ.get("SPARK_CONF_DIR") or (os.path.join(environ["SPARK_HOME"], "conf") if environ.get("SPARK_HOME") else None)
    if not conf_dir:
        return False
    try:
        lines = Path(conf_dir, "spark-defaults.conf").read_text(errors="replace").splitlines()
    except OSError:
        return False
    return any(re.match(r"\s*spark\.local\.dir\s*[=:\s]", line) for line in lines)


def host_identity() -> str:
    """Where pids mean something: this boot and this PID namespace (a container has its own)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:  # not Linux: pids of this host, as far as can be told
        import socket

        return socket.gethostname()


def is_leftover(record: dict[str, Any] | None, folder_uid: int, my_uid: int, my_host: str, running: Callable[[Process], bool]) -> bool:
    """The decision: may this folder be removed? Only when it is this user's, from this host's pids,
    and its JVM has exited (or, with no JVM recorded yet, the kernel that made it has)."""
    if folder_uid != my_uid or not record or record.get("host") != my_host:
        return False
    try:
        owner = record.get("jvm") or record["launcher"]
        return not running(Process(int(owner["pid"]), float(owner["create_time"])))
    except (KeyError, TypeError, ValueError):
        return False  # a record this code did not write: not ours to judge


def private_folder(root: Path) -> bool:
    """Make ``root`` (mode 0700), or accept it only if it is a real folder of this user (then made
    0700): False for a symlink or another user's folder. Raises OSError when it cannot be made."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid():
        return False
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(root, 0o700)
    return True


def ensure_root(root: Path) -> bool:
    """``private_folder(root)``, saying in the log why Spark's temp files go elsewhere when it fails."""
    try:
        if not private_folder(root):
            logger.warning("pyspark-kernel: %s is not a folder of this user; Spark's temp files go to its default place", root)
            return False
        return True
    except OSError as error:
        logger.warning("pyspark-kernel: cannot use %s for Spark's temp files (%s); they go to Spark's default place", root, error)
        return False


def write_record(folder: Path, record: dict[str, Any]) -> None:
    partial = folder / f".{RECORD}.partial"
    partial.write_text(json.dumps(record))
    os.replace(partial, folder / RECORD)


def read_record(folder: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def leftovers(root: Path | None = None) -> list[Path]:
    """The folders in ``root`` (this user's) that may be removed: see :func:`is_leftover`."""
    root = root or user_root()
    try:
        info = root.lstat()
        entries = list(root.iterdir()) if stat.S_ISDIR(info.st_mode) and info.st_uid == uid() else []
    except OSError:
        return []
    my_uid, my_host, found = uid(), host_identity(), []
    for entry in entries:
        try:
            info = entry.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and is_leftover(read_record(entry), info.st_uid, my_uid, my_host, is_running):
            found.append(entry)
    return found


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def sweep(root: Path | None = None) -> list[Path]:
    """Remove the leftovers of this user's dead JVMs; returns what was removed."""
    removed = leftovers(root)
    for folder in removed:
        remove(folder)
    return removed


def size_of(folder: Path) -> int:
    """Bytes in the files under ``folder``; links are not followed."""
    total = 0
    for path, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(path, name)).st_size
            except OSError:
                pass
    return total


if __name__ == "__main__":  # python -m pyspark_kernel.localdirs: what `check`'s fix says to run
    removed = sweep()
    for gone in removed:
        print(f"removed {gone}")
    print(f"{len(removed)} temp folder(s) of dead JVMs removed from {user_root()}")
