"""`make burst`: one Jupyter server under a burst of notebooks, with and without the provisioner.

For each kernelspec (the default one, and one installed with ``--provisioner``), --count notebooks
(default 16) are opened within one second (POST /api/sessions from that many threads), and each one's
kernel runs ``spark.range(10).count()`` over its websocket as a browser tab would. Meanwhile another
thread polls GET /api/status every 50 ms: its latency is how responsive the server stayed while the
kernels started (target p99 <= 250 ms on 2 cores), and a control HTTP server in its own process,
polled alike in the same window, shows what the machine's load alone costs. Then every session is
deleted, and the kernel and java processes that were under the server must be gone (by PID). Writes
bench/burst.md (full size only) and prints the table; the server's and kernels' output goes to a log
in the run's temp folder (--log-dir keeps it; --py-spy records the server's stacks there).
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

import psutil  # noqa: E402
from conftest import free_port, java_processes_under, wait_gone  # noqa: E402
from machine import machine_line  # noqa: E402
from measure import Progress, Quiet  # noqa: E402
from reliability.server import JupyterServer, count_in_notebook  # noqa: E402

POLL_SECONDS = 0.05
READY_TIMEOUT_SECONDS = 600.0  # all kernels counted, on a loaded 2-core machine
GONE_TIMEOUT_SECONDS = 30.0
P99_TARGET_MS = 250.0
SPARK_UI_WINDOW = range(4040, 4057)  # spark.ui.port 4040 and Spark's 16 default retries: other Sparks' UIs crowd it
SPECS = {"default": (), "provisioner": ("--provisioner",)}


@dataclass
class Burst:
    """What one burst measured."""

    label: str
    count: int
    posts_spread_s: float = 0.0  # first to last POST sent
    all_counted_s: float | None = None  # first POST -> the last kernel's count
    latencies_ms: list[float] = field(default_factory=list)
    status_errors: int = 0  # /api/status answers that were not 200
    control_ms: list[float] = field(default_factory=list)  # the control server's latency, same window
    memory_mb: list[float] = field(default_factory=list)  # per kernel: its process + its JVMs
    left: int | None = None  # kernel and java processes still there after every session was deleted
    failures: list[str] = field(default_factory=list)
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at the burst's start and end
    ui_ports_taken: int = 0  # ports of Spark's default UI window (4040-4056) already listened on at the start


class Poller(threading.Thread):
    """GET ``path`` every 50 ms on one kept-alive connection (as a browser's): latency in ms, and
    how many answers were not 200 (each still counted with the time it took)."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.headers = port, path, headers
        self.stopping, self.latencies_ms, self.errors = threading.Event(), [], 0

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        next_at = time.monotonic()
        while not self.stopping.is_set():
            started = time.perf_counter()
            try:
                connection.request("GET", self.path, headers=self.headers)
                response = connection.getresponse()
                response.read()
                self.errors += response.status != 200
            except OSError:
                self.errors += 1
                connection.close()  # reconnect on the next poll
            self.latencies_ms.append((time.perf_counter() - started) * 1000)
            next_at = max(next_at + POLL_SECONDS, time.monotonic())
            self.stopping.wait(next_at - time.monotonic())
        connection.close()


# The same-run baseline: an HTTP server on its own event loop that does nothing else. What it loses
# during a burst is the machine's (CPU contention); what the Jupyter server loses beyond it is its own.
CONTROL_SERVER = """
import asyncio, sys, tornado.web
class Ping(tornado.web.RequestHandler):
    def get(self):
        self.write({"ok": True})
async def main():
    tornado.web.Application([("/ping", Ping)]).listen(int(sys.argv[1]), address="127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
"""


class ControlServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, "-c", CONTROL_SERVER, str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                http.client.HTTPConnection("127.0.0.1", self.port, timeout=2).request("GET", "/ping")
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the control HTTP server did not answer within 30 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def ui_ports_taken() -> int:
    """How many ports of Spark's default UI window something listens on now (other kernels, other Sparks)."""
    listening = {c.laddr.port for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
    return len(listening & set(SPARK_UI_WINDOW))


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def burst(server: JupyterServer, control: ControlServer, kernel_name: str, label: str, count: int, progress: Progress) -> Burst:
    """Open ``count`` notebooks at once on ``kernel_name``, wait for each count, delete them all."""
    result = Burst(label, count, ui_ports_taken=ui_ports_taken())
    barrier = threading.Barrier(count)
    sessions: dict[int, dict] = {}
    posted: dict[int, float] = {}
    counted: dict[int, float] = {}

    def notebook(index: int) -> None:
        try:
            barrier.wait(30)
            posted[index] = time.monotonic()
            sessions[index] = session = server.open_notebook(f"burst/nb-{index}.ipynb", kernel_name)
            value = count_in_notebook(server, session["kernel"]["id"], timeout=READY_TIMEOUT_SECONDS)
            if value != "10":
                raise RuntimeError(f"count gave {value!r}")
            counted[index] = time.monotonic()
            progress.step(f"{len(counted)}/{count} counted")
        except Exception as error:
            result.failures.append(f"nb-{index}: {type(error).__name__}: {error}")
            traceback.print_exc()  # into the log

    poller = Poller(server.port, "/api/status", server.headers)
    control_poller = Poller(control.port, "/ping", {})
    threads = [threading.Thread(target=notebook, args=(index,), daemon=True) for index in range(count)]
    poller.start(), control_poller.start()
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS + 60
    for thread in threads:
        thread.join(max(0.1, deadline - time.monotonic()))
    for each in (poller, control_poller):
        each.stopping.set()
        each.join(15)
    if posted:
        result.posts_spread_s = max(posted.values()) - min(posted.values())
        result.latencies_ms, result.status_errors, result.control_ms = poller.latencies_ms, poller.errors, control_poller.latencies_ms
    if len(counted) == count:
        result.all_counted_s = max(counted.values()) - min(posted.values())
    noted = note_processes(server, [session["kernel"]["id"] for session in sessions.values()], result)
    progress.step("deleting the sessions")
    delete_all(server, list(sessions.values()), result)
    alive = wait_gone(noted, timeout=GONE_TIMEOUT_SECONDS)
    result.left = len({process.pid for process in alive} | {process.pid for process in server.leftovers()})
    return result


def note_processes(server: JupyterServer, kernel_ids: list[str], result: Burst) -> list[psutil.Process]:
    """Each kernel's process and JVMs, found by PID; their RSS summed per kernel into ``result``."""
    noted: list[psutil.Process] = []
    for kernel_id in kernel_ids:
        kernel = server.kernel_process(kernel_id)
        if kernel is None:
            result.failures.append(f"kernel {kernel_id}: no process under the server")
            continue
        jvms = java_processes_under(kernel.pid)
        try:
            result.memory_mb.append(sum(process.memory_info().rss for process in (kernel, *jvms)) / 2**20)
        except psutil.Error:
            pass
        noted += [kernel, *jvms]
    return noted


def delete_all(server: JupyterServer, sessions: list[dict], result: Burst) -> None:
    """DELETE every session (which shuts its kernel down), from threads, then any kernel still listed."""

    def delete(session: dict) -> None:
        try:
            server.request("DELETE", f"/api/sessions/{session['id']}", timeout=120)
        except OSError as error:
            result.failures.append(f"DELETE session {session['id']}: {error}")

    deleters = [threading.Thread(target=delete, args=(session,), daemon=True) for session in sessions]
    for deleter in deleters:
        deleter.start()
    for deleter in deleters:
        deleter.join(150)
    for kernel_id in server.kernel_ids():
        server.request("DELETE", f"/api/kernels/{kernel_id}", timeout=120)


def spy_on(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the server's threads (raw collapsed stacks, one line per stack with its count)."""
    return subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--threads", "--rate", "100", "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def install(prefix: Path, name: str, *args: str) -> str:
    subprocess.run(
        [sys.executable, "-m", "pyspark_kernel", "install", "--prefix", str(prefix), "--name", name, "--replace", *args],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return name


def latency(samples: list[float]) -> str:
    if not samples:
        return "-"
    return f"{statistics.median(samples):.0f} / {percentile(samples, 0.99):.0f} / {max(samples):.0f} ms ({len(samples)})"


def table(results: list[Burst]) -> list[str]:
    lines = [
        "| kernelspec | notebooks | POSTs sent within | all counted after | /api/status p50 / p99 / max (samples) | p99 ≤ 250 ms | "
        "non-200 | control server p50 / p99 / max | memory per kernel median (min-max) | left after delete | load 1 min start → end | "
        "ports 4040-4056 taken at start |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        verdict = "-" if not result.latencies_ms else ("met" if percentile(result.latencies_ms, 0.99) <= P99_TARGET_MS else "MISSED")
        memory = result.memory_mb
        memory_text = f"{statistics.median(memory):.0f} MB ({min(memory):.0f}-{max(memory):.0f})" if memory else "-"
        counted = f"{result.all_counted_s:.1f} s" if result.all_counted_s is not None else f"NOT ALL ({len(result.failures)} failed)"
        lines.append(
            f"| {result.label} | {result.count} | {result.posts_spread_s:.2f} s | {counted} | {latency(result.latencies_ms)} | {verdict} | "
            f"{result.status_errors} | {latency(result.control_ms)} | {memory_text} | {'-' if result.left is None else result.left} | "
            f"{result.load[0]:.0f} → {result.load[1]:.0f} | {result.ui_ports_taken} of {len(SPARK_UI_WINDOW)} |"
        )
    return lines


def run_bursts(specs: dict[str, str], count: int, root: Path, logs: Path, py_spy: bool, quiet: Quiet) -> list[Burst]:
    """One server and one control server for every burst; both stopped by PID, whatever happens."""
    progress, results = Progress(quiet.stderr), []
    server = control = None
    try:
        progress.begin("starting jupyter server")
        (root / "notebooks" / "burst").mkdir(parents=True)
        with open(logs / "server.log", "ab") as server_log:
            server = JupyterServer(root / "notebooks", server_log)
        control = ControlServer()
        progress.end(f"127.0.0.1:{server.port}, pid {server.process.pid}; control server pid {control.process.pid}")
        for label, kernel_name in specs.items():
            progress.begin(f"{count} notebooks on {label}")
            spy = spy_on(server.process.pid, logs / f"py-spy-{label}.txt") if py_spy else None
            load_at_start = os.getloadavg()[0]
            try:
                results.append(burst(server, control, kernel_name, label, count, progress))
            finally:
                if spy is not None:
                    spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                    spy.wait(60)
            last = results[-1]
            last.load = (load_at_start, os.getloadavg()[0])
            counted = f"{last.all_counted_s:.1f} s" if last.all_counted_s is not None else "NOT ALL"
            progress.end(f"all counted after {counted}, {len(last.failures)} failures, {last.left} processes left")
            for failure in last.failures:
                quiet.stderr.write(f"  {failure}\n")
    finally:
        for each in (server, control):
            if each is not None:
                each.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=16, help="notebooks opened at once (default 16)")
    parser.add_argument("--only", choices=sorted(SPECS), nargs="*", help="only these kernelspecs")
    parser.add_argument("--output", type=Path, help="where to write the table (default bench/burst.md, full-size runs only)")
    parser.add_argument("--log-dir", type=Path, help="keep the logs here (default: the run's temp folder, removed after)")
    parser.add_argument("--py-spy", action="store_true", help="record the server's stacks during each burst with py-spy (on PATH) into the log folder")
    args = parser.parse_args()
    output = args.output or (REPO / "bench" / "burst.md" if args.count == 16 and not args.only else None)
    with tempfile.TemporaryDirectory(prefix="pyspark-burst-") as root_name:
        root = Path(root_name)
        logs = args.log_dir or root
        logs.mkdir(parents=True, exist_ok=True)
        for variable in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR"):
            os.environ[variable] = str(root / variable.lower())
        os.environ["JUPYTER_PATH"] = str(root / "prefix" / "share" / "jupyter")
        with Quiet(logs / "burst.log") as quiet:
            progress = Progress(quiet.stderr)
            progress.begin("installing the kernelspecs")
            specs = {label: install(root / "prefix", f"burst-{label}", *options) for label, options in SPECS.items() if not args.only or label in args.only}
            progress.end(", ".join(specs.values()))
            results = run_bursts(specs, args.count, root, logs, args.py_spy, quiet)
    lines = [
        "# A Jupyter server under a burst of notebooks",
        "",
        f"{machine_line()} · other work shares this machine: see the load column",
        "",
        f"{args.count} notebooks opened at once (POST /api/sessions from {args.count} threads), each counting `spark.range(10).count()` "
        "over its websocket; GET /api/status polled every 50 ms from the first POST until the last count, and in the same "
        "window a control HTTP server (a tornado app doing nothing else, its own process) polled alike.",
        "",
        *table(results),
    ]
    print("\n".join(lines))
    if output is not None:
        output.write_text("\n".join(lines) + "\n")
    return 1 if any(r.failures or r.all_counted_s is None or r.left for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
