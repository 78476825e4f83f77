"""Warm the paths a notebook's first cells take, while the user reads.

A fresh session answers its FIRST query in 1-2.5 s (planning, code generation, the JIT, the first Python
worker) and later ones in about 0.2 s. Once the session is up and no cell is running, the kernel runs
the shapes first cells take (a DataFrame count, a SQL collect, a pandas round trip, a Python UDF) on
tiny data, in a job group of its own: invisible (the progress display follows only the cell's group,
nothing is printed), and cancelled, with the jobs it would still submit, the moment a cell starts.
Classic sessions only: a Connect server warms itself.

Each query sets the warm-up's job group again before it runs. An interrupt of a cell makes py4j drop
the connections it pools, the warm-up thread's among them; that thread's next call then runs on a new
connection, in a JVM thread with no job group, and its jobs were out of the reach of a group cancel.
Only where it is free: a local master (this machine's cores) by default. On YARN, Kubernetes or a
standalone cluster the same queries would ask for executors nobody wanted (with dynamic allocation,
containers start), fill the cluster's history and cost money, so a kernel there warms only if its
kernelspec says PYSPARK_KERNEL_WARMUP=on; =off turns it off anywhere. The master is the live session's
(a Python attribute, no JVM call), so spark-defaults.conf's master or a user's builder after
spark.stop() count as they are. local-cluster[...] is local: its executors are this machine's
processes, started with the application whether or not anything runs. A cancelled Python task ends only once Spark
kills its worker, spark.python.task.killTimeout later (settings.py makes that 500 ms in notebooks, from
Spark's 2 s), so the UDF query runs in one partition: the cell that cancelled it has the other cores.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

GROUP_PREFIX = "pyspark-kernel-warmup"
DESCRIPTION = "pyspark-kernel warm-up (cancelled when a cell runs)"
# A cancelled warm-up's group is cancelled again as jobs appear (jobgroups.cancel_as_jobs_appear, as an
# interrupted cell's is, with its own pace): more often than a cell's, since every job it still lists takes
# cores from the cell that just started; and for WARMUP_CANCEL_MIN_SECONDS even once its Python thread has
# ended, shorter than a cell's: a call py4j dropped goes on in the JVM, and may still submit adaptive
# execution's jobs, but the warm-up's queries run on tiny data.
WARMUP_CANCEL_POLL_SECONDS = 0.05
WARMUP_CANCEL_MIN_SECONDS = 5.0


def count(spark: Any) -> object:
    return spark.range(10).count()


def sql(spark: Any) -> object:
    return spark.sql("SELECT 1 AS one").collect()


def pandas(spark: Any) -> object:
    return spark.range(5).toPandas()


def python_udf(spark: Any) -> object:
    from pyspark.sql.functions import udf

    # One partition: a Python task that is cancelled ends only once Spark has killed its worker (after
    # spark.python.task.killTimeout), and until then it holds its core; the cell gets the other one.
    return spark.range(3, numPartitions=1).select(udf(lambda value: value + 1, "long")("id")).collect()


# The count and the SQL collect, the count a few times more (each run lets the JIT compile more of its
# path: measured in a kernel after one warm-up count, 0.23-0.26 s for the next three counts, 0.12-0.16 s
# from the sixth on), then the pandas round trip and the UDF, whose Python worker starts are the
# slowest part and the rarest first cells.
JIT_ROUNDS = 4
QUERIES: tuple[tuple[str, Callable[[Any], object]], ...] = (
    ("count", count),
    ("sql", sql),
    *((f"count {round_}", count) for round_ in range(2, 2 + JIT_ROUNDS)),
    ("pandas", pandas),
    ("udf", python_udf),
)
NAMES = tuple(name for name, _ in QUERIES)
# After a cell, the warm-up goes on only once no cell has started for this long: under Run All, or a
# user's next cell right after, each cell cancelled a query that had just begun and shared the cores
# with it (bench row 8's second run of a count took as long as its first).
RESUME_IDLE_SECONDS = 2.0


def worth_warming(choice: bool | None, master: str | None) -> bool:
    """Whether a session on ``master`` is warmed: as chosen, else only where it costs nothing (a local
    master). Imported here, not at the top: the class-data training runs a copy of this file (cli/cds.py)."""
    from pyspark_kernel.masters import is_local_master

    return choice if choice is not None else is_local_master(master)


class WarmUp:
    """One warm-up run for one session, in a thread of its own; cancel() never blocks."""

    def __init__(
        self,
        spark: Any,
        queries: tuple[tuple[str, Callable[[Any], object]], ...] = QUERIES,
        done: list[str] | None = None,
        jvm_alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self.spark = spark
        self.queries = queries
        self.jvm_alive = jvm_alive
        self.group = f"{GROUP_PREFIX}-{uuid.uuid4().hex[:8]}"
        self.done: list[str] = [] if done is None else done  # the queries that ran to the end, for this session
        self.seconds: float | None = None
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pyspark-kernel-warmup", daemon=True)

    def start(self) -> WarmUp:
        self._thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        try:
            context = self.spark.sparkContext
            for name, query in self.queries:
                if self.cancelled.is_set():
                    break
                context.setJobGroup(self.group, DESCRIPTION, interruptOnCancel=True)  # again: see the module's docstring
                if self.cancelled.is_set():
                    break
                query(self.spark)
                self.done.append(name)
        except Exception:  # cancelled under it, or a Spark that fails: the user's own cells will say why
            pass
        finally:
            self.seconds = time.monotonic() - started
            self.finished.set()

    def cancel(self) -> None:
        """Stop the warm-up and its jobs, from a thread of its own (a JVM call must not delay the cell
        that asked): no query starts after this, and the group is cancelled with its future jobs, then
        again as jobs appear (adaptive execution's map-stage jobs escape "future jobs"), while the
        warm-up's thread runs and WARMUP_CANCEL_MIN_SECONDS at least: jobgroups.cancel_as_jobs_appear, as for
        an interrupted cell."""
        if self.finished.is_set() or self.cancelled.is_set():
            return
        self.cancelled.set()
        from pyspark_kernel.kernel.backends.jobgroups import cancel_as_jobs_appear

        args = (self.spark.sparkContext, self.group, self._thread.is_alive, WARMUP_CANCEL_MIN_SECONDS, WARMUP_CANCEL_POLL_SECONDS, self.jvm_alive)
        threading.Thread(target=cancel_as_jobs_appear, args=args, name="pyspark-kernel-warmup-cancel", daemon=True).start()


class IdleWarmer:
    """Warms each new session once while no cell runs, and stops a warm-up the moment a cell starts.

    ``session`` is the kernel's ManagedSession: its live session, whether it is ready, and its
    backend, which says whether its kind of session is worth warming.
    """

    def __init__(self, session: Any) -> None:
        from pyspark_kernel.variables import WARMUP, switch  # here, not at the top: the training runs a copy of this file

        self.session = session
        self.choice = switch(os.environ, WARMUP)  # True (on), False (off), None (unset: the master decides)
        self.current: WarmUp | None = None  # the last warm-up, for the session it warmed
        self._cell_running = False
        self._cells = 0  # cells started so far: a resume waits for this to stay put
        self._lock = threading.Lock()

    def cell_started(self) -> None:
        with self._lock:
            self._cell_running = True
            self._cells += 1
        self.cancel()

    def cell_ended(self) -> None:
        """Resume (or begin, for a session the cell made) RESUME_IDLE_SECONDS later if no cell started
        meanwhile. Costs a cell nothing once its session is warmed: no timer then."""
        with self._lock:
            self._cell_running = False
            cells = self._cells
        if self.warmed():
            return
        timer = threading.Timer(RESUME_IDLE_SECONDS, self._resume, args=(cells,))
        timer.daemon = True
        timer.start()

    def _resume(self, cells: int) -> None:
        with self._lock:
            if self._cells != cells:
                return  # a cell started since: its own end schedules the next try
            current = self.current
        if current is not None:
            current.finished.wait(RESUME_IDLE_SECONDS * 5)  # a cancelled query may still be winding down
        self.warm_if_idle()

    def warm_if_idle(self) -> None:
        """Called when a cell ends and when a start made a session (on the start thread): warms a new
        session, or goes on with what a cell's start cut short."""
        with self._lock:
            spark = self.session.session
            if self._cell_running or spark is None or not self.session.ready or not self.wanted(spark):
                return
            current = self.current
            if current is not None and current.spark is spark:
                if not current.finished.is_set() or not current.cancelled.is_set():
                    return  # still warming, or warmed to the end
                remaining = tuple((name, query) for name, query in QUERIES if name not in current.done)
                if not remaining:
                    return
                self.current = WarmUp(spark, remaining, current.done, self.session.jvm_alive).start()
            else:
                self.current = WarmUp(spark, jvm_alive=self.session.jvm_alive).start()

    def cancel(self) -> None:
        if self.current is not None:
            self.current.cancel()

    def wanted(self, spark: Any) -> bool:
        """Whether ``spark`` is to be warmed: a kind of session worth it, on a master where it is free
        or where the kernelspec asked for it."""
        if self.choice is False or not self.session.backend.warmable:
            return False
        return worth_warming(self.choice, getattr(spark.sparkContext, "master", None))

    def warmed(self) -> bool:
        """Whether the live session has been warmed to the end (or is not to be warmed at all)."""
        spark = self.session.session
        if self.choice is False or not self.session.backend.warmable or (spark is not None and not self.wanted(spark)):
            return True
        current = self.current
        return current is not None and current.spark is spark and current.finished.is_set() and not current.cancelled.is_set()
