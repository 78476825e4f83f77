"""Interrupts at the unlucky moment, and faults the kernel used to swallow, with real kernels and JVMs.

An interrupt may land anywhere in a request: before the cell's code, inside a py4j call, after the code
while the kernel finishes the cell (progress summary, session line). Each request still gets its reply,
and an interrupt of the main thread never breaks a JVM call another thread is making.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import KernelHarness
from jupyter_client.manager import KernelManager

pytestmark = pytest.mark.slow


class LoggedKernel(KernelHarness):
    """A kernel whose stderr (where ipykernel writes the kernel's log, as Jupyter shows it) goes to a file."""

    def __init__(self, kernel_name: str, log_path: Path, extra_env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self._log_file = open(log_path, "w")  # noqa: SIM115 (the kernel writes to it until shutdown closes it)
        self.manager = KernelManager(kernel_name=kernel_name)
        self.manager.start_kernel(env={**os.environ, **(extra_env or {})}, stderr=self._log_file)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def log(self) -> str:
        return self.log_path.read_text()

    def shutdown(self) -> None:
        super().shutdown()
        self._log_file.close()


@pytest.fixture(scope="module")
def plain_kernel(prefix: Path) -> Iterator[KernelHarness]:
    """Plain ipykernel (with pip's pyspark on its path), to compare what a user's error shows."""
    from notebooks.record import PLAIN_KERNEL, install_plain_kernel

    install_plain_kernel(prefix)
    harness = KernelHarness(PLAIN_KERNEL)
    yield harness
    harness.shutdown()


@pytest.fixture(scope="module")
def kernel(default_spec: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedKernel]:
    # No idle warm-up: its jobs would only add noise (and CPU) between the cells under test.
    harness = LoggedKernel(default_spec.name, tmp_path_factory.mktemp("interrupts") / "kernel.log", {"PYSPARK_KERNEL_WARMUP": "off"})
    assert harness.value("spark.range(10).count()") == "10"
    yield harness
    harness.shutdown()


def kernel_outputs(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [output for output in result["outputs"] if output.get("metadata", {}).get("pyspark_kernel") == kind]


def interrupt_and_wait(kernel: KernelHarness, code: str, delay: float, bound: float = 60) -> dict[str, Any]:
    """Send ``code``, interrupt ``delay`` s later, return its execute_reply; fail if none comes within ``bound`` s."""
    msg_id = kernel.client.execute(code, stop_on_error=False)
    time.sleep(delay)
    kernel.manager.interrupt_kernel()
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        try:
            reply = kernel.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:
            break
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]
    raise AssertionError(f"no execute_reply within {bound} s for {code!r} interrupted {delay:.3f} s after the request")


# -- every request gets its reply ------------------------------------------------------------------
SHORT_CELLS = ("spark.range(1000).count()", "spark.range(0, 2 * 10**7, numPartitions=4).selectExpr('sum(id)').collect()[0][0]")


def test_forty_interrupts_around_the_end_of_short_spark_cells_each_get_their_reply(kernel: LoggedKernel) -> None:
    """An interrupt that lands while the kernel finishes a cell (the progress summary's last poll, the
    session line) used to escape do_execute: no reply, the cell at [*] forever. Delays are seeded and
    spread around each cell's usual length, so some land before, in and after the cell's end."""
    durations: dict[str, float] = {}
    for code in SHORT_CELLS:
        timings = []
        for _ in range(3):
            started = time.monotonic()
            kernel.value(code)
            timings.append(time.monotonic() - started)
        durations[code] = statistics.median(timings)
    chance = random.Random(25)
    for round_number in range(40):
        code = SHORT_CELLS[round_number % 2]
        delay = durations[code] * chance.uniform(0.5, 1.3)
        reply = interrupt_and_wait(kernel, code, delay)
        # Either the cell's own result (the interrupt came once its code had returned) or the interrupt.
        assert reply["status"] == "ok" or reply.get("ename") == "KeyboardInterrupt", reply
    kernel.client.kernel_info(reply=True, timeout=30)  # nothing of the interrupts is left queued
    assert kernel.value("spark.range(1000).count()") == "1000"


def test_an_error_pyspark_raises_while_an_interrupt_unwinds_it_shows_as_the_interrupt(kernel: LoggedKernel) -> None:
    """pyspark's socket reader (what collect() reads results through) raises UnboundLocalError from its
    ``finally`` when SIGINT lands before its socket exists; seen in one of forty interrupts around short
    cells. Here the reader waits on a socket that never answers, so the interrupt lands there each time.
    An error of the user's own cleanup code stays theirs."""
    reader = (
        "import socket\n"
        "from pyspark.util import _load_from_socket\n"
        "from pyspark.serializers import CPickleSerializer\n"
        "_silent = socket.create_server(('127.0.0.1', 0))\n"
        "with _load_from_socket((_silent.getsockname()[1], 'secret'), CPickleSerializer()) as rows:\n"
        "    list(rows)"
    )
    reply = interrupt_and_wait(kernel, reader, 2.0)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", (reply["ename"], reply["evalue"])
    own = interrupt_and_wait(kernel, "import time\ntry:\n    time.sleep(30)\nfinally:\n    cleanup_that_is_not_defined", 2.0)
    assert own["ename"] == "NameError", (own["ename"], own["evalue"])


def test_an_interrupt_while_the_kernel_finishes_a_cell_leaves_the_cells_own_reply(kernel: LoggedKernel) -> None:
    """The end of a cell, made long on purpose: a stand-in wraps the controller's after_cell in a 3 s
    sleep (it is short in life, which is what made the bad moment rare). The code has run: the reply is
    the cell's own, as an interrupt between cells is ignored."""
    kernel.run(
        "import time as _time\n"
        "_kernel = get_ipython().kernel\n"
        "_real_after_cell = _kernel.controller.after_cell\n"
        "def _slow_after_cell():\n"
        "    _time.sleep(3)\n"
        "    _real_after_cell()\n"
        "_kernel.controller.after_cell = _slow_after_cell"
    )
    try:
        reply = interrupt_and_wait(kernel, "finished = 'yes'", 1.0)
    finally:
        kernel.run("_kernel.controller.after_cell = _real_after_cell")
    assert reply["status"] == "ok", reply
    assert kernel.value("finished") == "'yes'"


# -- an interrupt of the main thread leaves other threads' JVM calls alone --------------------------
# Another thread waits in the JVM at a barrier for the main thread; a third thread's py4j connection sits
# idle in py4j's pool, as the progress monitor's and many a library's do.
OTHER_THREAD_WAITS_IN_THE_JVM = """
import threading
barrier = sc._jvm.java.util.concurrent.CyclicBarrier(2)
other, idle_ready, idle_done = {}, threading.Event(), threading.Event()
def wait_at_the_barrier():
    try: other['arrival'] = getattr(barrier, 'await')()  # CyclicBarrier.await; a keyword in Python
    except BaseException as error: other['error'] = repr(error)[:300]
def idle():
    sc._jvm.java.lang.System.currentTimeMillis()  # a connection of its own, idle in py4j's pool from now on
    idle_ready.set(); idle_done.wait(120)
threading.Thread(target=idle, daemon=True).start(); idle_ready.wait(30)
waiter = threading.Thread(target=wait_at_the_barrier, daemon=True); waiter.start()
"""


def test_an_interrupted_jvm_call_leaves_another_threads_call_in_flight_alone(kernel: LoggedKernel) -> None:
    """py4j answers a KeyboardInterrupt in a call by sending its cancel command for that socket on each
    pooled connection; the JVM (GatewayServer.shutdownSocket) then closes every connection whose local
    port is the gateway's, that is all of them, and interrupts their JVM threads. Another thread's call
    in flight was broken (the barrier here), or silently sent again on a new connection."""
    kernel.run(OTHER_THREAD_WAITS_IN_THE_JVM)
    reply = interrupt_and_wait(kernel, "sc._jvm.java.lang.Thread.sleep(3000)", 1.5)
    assert reply.get("ename") == "KeyboardInterrupt", reply
    time.sleep(3)  # the interrupted JVM call ends: a cancel sent on its own connection is read by now
    outcome = kernel.value(
        "try: main_arrival = getattr(barrier, 'await')(30, sc._jvm.java.util.concurrent.TimeUnit.SECONDS)\n"
        "except BaseException as error: main_arrival = repr(error)[:300]\n"
        "waiter.join(30); idle_done.set(); sorted([main_arrival, other.get('arrival', other.get('error'))], key=str)"
    )
    assert outcome == "[0, 1]", f"the other thread's JVM call was broken: {outcome}"


# -- faults the kernel used to swallow: logged, and told once in the cell ----------------------------
LONG_ENOUGH_TO_POLL = "spark.range(0, 2 * 10**9, numPartitions=8).selectExpr('sum(id % 7)').collect()[0][0]"


def test_a_failed_progress_poll_is_logged_told_once_and_the_next_cell_has_progress_again(kernel: LoggedKernel) -> None:
    """The poll used to swallow its errors, and kept the JVM object it had failed on: progress was gone,
    silently, for the rest of the session. The fault here is real but put there on purpose (the narrowest
    one at hand): the JVM forgets the status store the poll holds, through py4j's public detach()."""
    assert kernel_outputs(kernel.run(LONG_ENOUGH_TO_POLL), "progress"), "no progress display to begin with"
    kernel.run("sc._gateway.detach(get_ipython().kernel.controller.progress._monitor._readers.view._store)")
    broken = kernel.run(LONG_ENOUGH_TO_POLL)
    notices = [output["data"]["text/plain"] for output in kernel_outputs(broken, "notice")]
    assert len(notices) == 1 and notices[0].startswith("Warning: progress display stopped: "), broken["outputs"]
    assert "progress display stopped" in kernel.log(), "the failure is not in the kernel's log"
    assert not any("progress display stopped" in str(output) for output in broken["outputs"] if output["type"] == "stream")
    again = kernel.run(LONG_ENOUGH_TO_POLL)
    assert kernel_outputs(again, "progress"), "progress did not come back in the next cell"
    assert not kernel_outputs(again, "notice")


BREAK_SET_JOB_GROUP = """
from pyspark import SparkContext
from py4j.protocol import Py4JError
_real_set_job_group = SparkContext.setJobGroup
def _failing_set_job_group(self, *args, **kwargs):
    raise Py4JError('An error occurred while calling o42.setJobGroup (stand-in)')
SparkContext.setJobGroup = _failing_set_job_group
"""


def test_a_failed_set_job_group_is_logged_and_told_once(kernel: LoggedKernel) -> None:
    """A cell whose job group could not be set runs anyway, and an interrupt then cancels none of its
    jobs: the user is told, once. The failure is a stand-in (setJobGroup replaced by one that raises
    what py4j raises); a real interrupt makes the kernel set a fresh group for the next cell."""
    kernel.run(BREAK_SET_JOB_GROUP)
    try:
        assert interrupt_and_wait(kernel, "import time; time.sleep(10)", 1.0).get("ename") == "KeyboardInterrupt"
        first = kernel.run("spark.range(5).count()")
        second = kernel.run("spark.range(6).count()")
    finally:
        kernel.run("SparkContext.setJobGroup = _real_set_job_group")
    notices = [output["data"]["text/plain"] for output in kernel_outputs(first, "notice")]
    assert notices == ["Warning: this cell's Spark jobs cannot be cancelled by an interrupt: An error occurred while calling o42.setJobGroup (stand-in)"], (
        first["outputs"]
    )
    assert not kernel_outputs(second, "notice"), "told again in the next cell"
    assert [output["data"]["text/plain"] for output in second["outputs"] if output["type"] == "execute_result"] == ["6"], second["outputs"]
    assert "setting the cell's job group failed" in kernel.log(), "the failure is not in the kernel's log"
    assert kernel.value("spark.range(7).count(), get_ipython().kernel.controller.session.backend.job_group._group is not None") == "(7, True)"


USER_ERRORS = (
    "undefined_name",
    "1 / 0",
    "eval('1 +')",  # a SyntaxError raised while running: IPython lists its frames
    "def inner():\n    raise ValueError('from a function')\ninner()",
    "import json\njson.loads('{')",
)


@pytest.mark.parametrize("code", USER_ERRORS)
def test_the_users_own_errors_show_as_plain_ipykernel_shows_them(kernel: LoggedKernel, plain_kernel: KernelHarness, code: str) -> None:
    """The kernel's error handler sees every error (to catch pyspark's during an interrupt): the user's
    own must read exactly as in plain ipykernel, traceback included (differential, ANSI codes dropped)."""

    def shown(harness: KernelHarness) -> tuple[str, str, list[str]]:
        (error,) = [output for output in harness.run(code)["outputs"] if output["type"] == "error"]
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in error["traceback"]]
        return error["ename"], error["evalue"], [re.sub(r"In\[\d+\]|Cell In\[\d+\]", "In[N]", line) for line in lines]

    assert shown(kernel) == shown(plain_kernel)
