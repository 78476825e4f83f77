"""The temp folder each JVM launch of this kernel gets (the records and the sweep: localdirs.py).

Unless the user chose Spark's local dirs, a launch gets a fresh folder of this user's root as its
``spark.local.dir`` and ``java.io.tmpdir``, recorded as this kernel's and, once launched, its JVM's: so
what a killed JVM leaves is found and removed by the next kernel's start (or ``pyspark-kernel check``).
"""

from __future__ import annotations

import logging
import os
import shlex
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from pyspark_kernel.localdirs import (
    describe,
    ensure_root,
    host_identity,
    read_record,
    sweep,
    user_chose_local_dirs,
    user_root,
    write_record,
)

logger = logging.getLogger(__name__)


def new_folder(environ: Mapping[str, str] | None = None) -> Path | None:
    """A fresh folder for one JVM launch, recorded as this process's; None if none can be made (the
    launch then goes on with Spark's defaults: temp files never stop a start)."""
    root = user_root(environ)
    me = describe(os.getpid())
    if me is None or not ensure_root(root):
        return None
    try:
        folder = Path(tempfile.mkdtemp(prefix=f"{me.pid}-{int(me.create_time)}-", dir=root))
        write_record(folder, {"host": host_identity(), "launcher": vars(me)})
    except OSError as error:
        logger.warning("pyspark-kernel: cannot make a temp folder in %s (%s)", root, error)
        return None
    return folder


def launch_folder(conf: Mapping[str, str]) -> Path | None:
    """A JVM launch's own folder, or None when the user chose Spark's local dirs (in ``conf``, the
    launch's Spark conf, or the environment): then Spark's choice stands."""
    return None if user_chose_local_dirs(conf, os.environ) else new_folder()


def record_jvm(folder: Path, pid: int) -> None:
    """Name the launched JVM as the folder's owner from now on (it may outlive this process a moment)."""
    record = read_record(folder) or {}
    jvm = describe(pid)
    record["jvm"] = vars(jvm) if jvm else {"pid": pid, "create_time": 0.0}  # already gone: a leftover
    try:
        write_record(folder, record)
    except OSError as error:
        logger.warning("pyspark-kernel: cannot record the JVM in %s (%s)", folder, error)


def java_options(folder: Path) -> str:
    """For SPARK_SUBMIT_OPTS: the JVM's own temp files (spark-submit's dir, artifacts, native libs) go
    to ``folder`` too; a -Djava.io.tmpdir in spark.driver.extraJavaOptions comes later and wins."""
    return f"-Djava.io.tmpdir={shlex.quote(str(folder))}"


def sweep_in_background() -> None:
    """Called at kernel start: the sweep runs off the start path (kernel_info and the session's start never wait)."""
    threading.Thread(target=sweep, name="pyspark-kernel-sweep", daemon=True).start()
