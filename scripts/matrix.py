"""``make matrix``: every Spark line x Java 17, 21 and 25 x this venv's Python, run for real.

Each cell is what a user does: ``pyspark-kernel install --spark-home <Spark X> --env JAVA_HOME <JDK>``
into a temporary prefix, ``pyspark-kernel check NAME`` (must exit 0), then a short notebook through
nbclient: the JVM's Java and Spark are the cell's, a count, SQL, a pandas UDF, an interrupt of a long
job (KeyboardInterrupt, then the kernel still answers). A pair Spark's docs do not support must be
refused by install (exit 2); its message goes in the table. A Java this machine lacks is "not run",
never faked. The table goes to docs/compatibility.md (a full run) and stdout.

    .venv/bin/python scripts/matrix.py                     # all cells -> docs/compatibility.md
    .venv/bin/python scripts/matrix.py --cells 3.5/17,4.3/25   # some cells, printed only
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import psutil
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from pyspark_kernel import environment  # noqa: E402  (the repo's own rule, also when run from elsewhere)

CACHE = REPO / ".cache"
# The newest patch of each line on PyPI (`pip index versions pyspark`, 2026-12-01).
SPARK_LINES = {"3.5": "3.5.9", "4.0": "4.0.5", "4.1": "4.1.4", "4.2": "4.2.1", "4.3": "4.3.0"}
JAVAS = (17, 21, 25)
CI_CELLS = ("3.5/17", "4.3/25")  # tests/test_matrix.py runs these two
INTERRUPT_AFTER = 8  # s into the long job: past the planning phase, where an interrupt can be lost
LONG_JOB_CELL = 4  # the notebook's cell that is interrupted
CELL_TIMEOUT = 600  # s for any one cell: the long job alone runs minutes when nothing stops it
NOTEBOOK_DEADLINE = 1200  # s for the whole notebook; then its kernel is killed by PID and the cell fails


@dataclass(frozen=True)
class Cell:
    line: str  # a key of SPARK_LINES
    java: int  # a feature release

    @property
    def name(self) -> str:
        return f"{self.line}/{self.java}"

    @property
    def spark_version(self) -> str:
        return SPARK_LINES[self.line]

    @classmethod
    def parse(cls, text: str) -> Cell:
        line, _, java = text.partition("/")
        if line not in SPARK_LINES or not java.isdigit() or int(java) not in JAVAS:
            raise SystemExit(f"matrix: {text!r} is not a cell; use LINE/JAVA with LINE in {', '.join(SPARK_LINES)} and JAVA in {JAVAS}")
        return cls(line, int(java))


@dataclass(frozen=True)
class Outcome:
    cell: Cell
    status: str  # pass, FAIL, refused, not run
    detail: str
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "FAIL"


def java_for(feature: int) -> environment.JavaRuntime | None:
    """This machine's newest update of Java ``feature`` under /usr/lib/jvm, if it has one."""
    found = [java for java in environment.installed_javas() if java.version == feature]
    return found[-1] if found else None


def spark_home_for(version: str) -> Path:
    """A SPARK_HOME of ``version`` in pip's layout: the venv's own pyspark if it is that version, the
    tests' cached 3.5.9, else ``pip install --no-deps --target`` once into .cache/matrix/."""
    import pyspark

    if pyspark.__version__ == version:
        return Path(pyspark.__file__).parent
    for target in (CACHE / f"pyspark-{version}", CACHE / "matrix" / f"pyspark-{version}"):
        if (target / "pyspark" / "jars").is_dir() and (target / f"pyspark-{version}.dist-info" / "RECORD").is_file():  # pip's last file
            return target / "pyspark"
    target = CACHE / "matrix" / f"pyspark-{version}"
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(partial), f"pyspark=={version}"],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    partial.rename(target)
    return target / "pyspark"


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyspark_kernel", *args], capture_output=True, text=True, env=env, timeout=900, cwd=REPO)


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no output)"


def run_cell(cell: Cell, work: Path) -> Outcome:
    """Install, check and run the notebook for one cell in ``work`` (a scratch folder)."""
    started = time.monotonic()
    java = java_for(cell.java)
    spark = cell.spark_version
    if java is None:
        judged = (
            "; the rule would refuse this pair anyway"
            if environment.java_refusal(spark, environment.JavaRuntime(Path("java"), cell.java, str(cell.java)))
            else ""
        )
        return Outcome(cell, "not run", f"no Java {cell.java} on this machine (looked under {', '.join(environment.JVM_FOLDERS)}){judged}")
    java_home = java.executable.parent.parent
    prefix = work / "prefix"
    env = {key: value for key, value in os.environ.items() if key not in ("JAVA_HOME", "SPARK_HOME", "PYSPARK_SUBMIT_ARGS")}
    env.update(
        JUPYTER_PATH=str(prefix / "share" / "jupyter"),
        JUPYTER_DATA_DIR=str(work / "data"),
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        XDG_CACHE_HOME=str(CACHE / "xdg"),
    )  # class-data archives: once per Java and Spark, beside the tests'
    name = "m-" + cell.name.replace(".", "-").replace("/", "-java")
    try:
        home = spark_home_for(spark)
    except subprocess.CalledProcessError as error:
        return Outcome(cell, "FAIL", f"pip install pyspark=={spark}: {first_line(error.stderr or '')}", time.monotonic() - started)
    installed = cli(
        [
            "install",
            "--prefix",
            str(prefix),
            "--name",
            name,
            "--spark-home",
            str(home),
            "--env",
            "JAVA_HOME",
            str(java_home),
            "--master",
            "local[2]",
            "--replace",
        ],
        env,
    )
    refusal = environment.java_refusal(spark, java)
    seconds = lambda: time.monotonic() - started  # noqa: E731
    if refusal is not None:
        if installed.returncode != 2:
            return Outcome(cell, "FAIL", f"install should refuse Spark {spark} on Java {java.version_text} but exited {installed.returncode}", seconds())
        message = " ".join(line.strip() for line in installed.stderr.split("error: ", 1)[-1].strip().splitlines())
        return Outcome(cell, "refused", f"refused by install: {message}", seconds())
    if installed.returncode != 0:
        return Outcome(cell, "FAIL", f"install exited {installed.returncode}: {first_line(installed.stderr)}", seconds())
    checked = cli(["check", name, "--prefix", str(prefix)], env)
    if checked.returncode != 0:
        failed = [line for line in checked.stdout.splitlines() if line.startswith("FAIL")]
        return Outcome(cell, "FAIL", f"check exited {checked.returncode}: {first_line(failed[0] if failed else checked.stdout + checked.stderr)}", seconds())
    problem = run_notebook(name, prefix, spark, java, CACHE / "matrix" / "notebooks" / f"{name}.ipynb")
    if problem:
        return Outcome(cell, "FAIL", problem, seconds())
    return Outcome(cell, "pass", f"Spark {spark} on Java {java.version_text} ({java_home}), Python {platform.python_version()}", seconds())


def notebook(spark: str, java: environment.JavaRuntime) -> nbformat.NotebookNode:
    """The short notebook each cell runs; every check is an assert, so a wrong answer is an error."""
    java_home = str(java.executable.parent.parent.resolve())
    sources = [
        (
            "import pyspark, os\n"
            "jvm = spark.sparkContext._jvm.System\n"
            f"assert spark.version == {spark!r} and pyspark.__version__ == {spark!r}, (spark.version, pyspark.__version__)\n"
            f"assert jvm.getProperty('java.version') == {java.version_text!r}, jvm.getProperty('java.version')\n"
            f"assert os.path.realpath(jvm.getProperty('java.home')) == {java_home!r}, jvm.getProperty('java.home')\n"
            "print(spark.version, jvm.getProperty('java.version'), jvm.getProperty('java.home'))"
        ),
        "assert spark.range(1000).count() == 1000",
        "spark.range(10).createOrReplaceTempView('t')\nassert spark.sql('SELECT sum(id) AS s FROM t').collect()[0].s == 45",
        (
            "import pandas as pd\nfrom pyspark.sql.functions import pandas_udf\n\n"
            "@pandas_udf('long')\ndef plus_one(v: pd.Series) -> pd.Series:\n    return v + 1\n\n"
            "assert [row[0] for row in spark.range(3).select(plus_one('id')).collect()] == [1, 2, 3]"
        ),
        "spark.range(0, 2 * 10**11, numPartitions=400).selectExpr('sum(id % 7)').collect()  # minutes, unless interrupted",
        (
            "import time\nfor _ in range(300):  # bounded: the interrupted job must go away\n"
            "    if not spark.sparkContext.statusTracker().getActiveJobsIds():\n        break\n    time.sleep(0.1)\n"
            "assert not spark.sparkContext.statusTracker().getActiveJobsIds(), 'the interrupted job still runs'\n"
            "assert spark.range(5).count() == 5"
        ),
    ]
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    cells[LONG_JOB_CELL].metadata["tags"] = ["raises-exception"]  # nbclient: its error is expected
    return nbformat.v4.new_notebook(cells=cells)


def run_notebook(name: str, prefix: Path, spark: str, java: environment.JavaRuntime, saved: Path) -> str | None:
    """Run the notebook in kernelspec ``name``, cell by cell; None when all went as expected, else the
    first problem. The long job's cell gets ONE interrupt, INTERRUPT_AFTER s in, from a timer thread;
    a kernel that loses it lets the job end by itself, which fails the cell (never a retry loop)."""
    book = notebook(spark, java)
    manager = KernelManager(kernel_name=name, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(prefix / "share" / "jupyter" / "kernels")]))
    client = NotebookClient(book, km=manager, timeout=CELL_TIMEOUT, startup_timeout=300)
    killer = threading.Timer(NOTEBOOK_DEADLINE, kill_kernel, args=(manager,))
    index = -1  # the cell running when something fails; -1: the kernel did not start
    killer.start()
    try:
        with client.setup_kernel():
            for index, cell in enumerate(book.cells):
                interrupter = threading.Timer(INTERRUPT_AFTER, manager.interrupt_kernel) if index == LONG_JOB_CELL else None
                if interrupter:
                    interrupter.start()
                try:
                    client.execute_cell(cell, index)
                finally:
                    if interrupter:
                        interrupter.cancel()
    except CellExecutionError as error:
        return f"notebook cell {index}: {error.ename}: {first_line(error.evalue)}"
    except (DeadKernelError, CellTimeoutError) as error:
        return f"notebook cell {index}: {type(error).__name__} (the notebook's deadline is {NOTEBOOK_DEADLINE} s): {first_line(str(error))}"
    finally:
        killer.cancel()
        stop_kernel(manager)
        saved.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(book, saved)  # the executed notebook, outputs and all, for a failure's details
    errors = [output for output in book.cells[LONG_JOB_CELL].outputs if output.get("output_type") == "error"]
    if not errors or errors[0].get("ename") != "KeyboardInterrupt":
        ended = errors[0].get("ename") if errors else "no error: the interrupt was lost and the job ran to its end"
        return f"notebook cell {LONG_JOB_CELL}: the interrupted job's cell ended with {ended}, not KeyboardInterrupt"
    return None


def kill_kernel(manager: KernelManager) -> None:
    """The notebook's deadline passed: SIGKILL its kernel by PID (its JVM follows, it watches stdin)."""
    process = getattr(manager.provisioner, "process", None)
    if process is not None:
        process.kill()


def stop_kernel(manager: KernelManager) -> None:
    """Shut the kernel down and make sure its JVMs are gone (killed by PID if they outlive it)."""
    process = getattr(manager.provisioner, "process", None)
    jvms = []
    if process is not None and psutil.pid_exists(process.pid):
        jvms = [child for child in psutil.Process(process.pid).children(recursive=True) if "java" in child.name()]
    if manager.has_kernel:
        manager.shutdown_kernel(now=False)
    _, alive = psutil.wait_procs(jvms, timeout=30)
    for leftover in alive:
        leftover.kill()


def machine_line() -> str:
    javas = ", ".join(f"{java.version_text} ({java.executable.parent.parent})" for java in environment.installed_javas()) or "none"
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores, {memory:.0f} GiB; Python {platform.python_version()} "
        f"(the repository's venv); Javas under /usr/lib/jvm: {javas}"
    )


def report(outcomes: list[Outcome]) -> str:
    """docs/compatibility.md: the table, what each cell ran, the details, how to run it again."""
    by_cell = {outcome.cell: outcome for outcome in outcomes}
    lines = [
        "# Compatibility: Spark x Java x Python",
        "",
        f"Generated by `make matrix` (scripts/matrix.py) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; do not edit by hand.",
        "",
        f"Machine: {machine_line()}.",
        "",
        "A run cell installs a kernelspec with `pyspark-kernel install --spark-home <pip --target pyspark==X> --env JAVA_HOME <JDK>`,",
        "runs `pyspark-kernel check` (exit 0), then a notebook through nbclient: the JVM's `java.version`, `java.home` and",
        f"`spark.version` are the cell's, a count, SQL, a pandas UDF, and an interrupt {INTERRUPT_AFTER} s into a long job",
        "(the cell ends in KeyboardInterrupt, the job goes away, the kernel answers again). A pair Spark does not support",
        "must be refused by `install` (exit 2, checked); the rule is `SUPPORTED_JAVA` in pyspark_kernel/javas.py.",
        "",
        "| Spark | " + " | ".join(f"Java {java}" for java in JAVAS) + " |",
        "|---|" + "---|" * len(JAVAS),
    ]
    for line, version in SPARK_LINES.items():
        row = []
        for java in JAVAS:
            outcome = by_cell.get(Cell(line, java))
            row.append("-" if outcome is None else f"{outcome.status}" + (f" ({outcome.seconds:.0f} s)" if outcome.seconds else ""))
        lines.append(f"| {version} | " + " | ".join(row) + " |")
    lines += ["", f"Python: {platform.python_version()} (the kernel's, this venv's) in every cell.", "", "## Cells", ""]
    lines += [f"- **{outcome.cell.spark_version} / Java {outcome.cell.java}: {outcome.status}**: {outcome.detail}" for outcome in outcomes]
    lines += [
        "",
        "## Run it again",
        "",
        "    make matrix                                   # every cell, rewrites this file",
        "    .venv/bin/python scripts/matrix.py --cells 3.5/17,4.3/25   # some cells, printed only",
        "",
        f"CI runs {' and '.join(CI_CELLS)} (tests/test_matrix.py, marked slow). Spark folders are cached in .cache/matrix/.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", help="comma-separated LINE/JAVA cells, e.g. 3.5/17,4.3/25 (default: all)")
    parser.add_argument("--output", type=Path, help="where to write the report (default: docs/compatibility.md for a full run, none with --cells)")
    args = parser.parse_args(argv)
    cells = [Cell.parse(text) for text in args.cells.split(",")] if args.cells else [Cell(line, java) for line in SPARK_LINES for java in JAVAS]
    output = args.output or (None if args.cells else REPO / "docs" / "compatibility.md")
    outcomes = []
    for cell in cells:
        with tempfile.TemporaryDirectory(prefix="pyspark-matrix-") as work:
            outcome = run_cell(cell, Path(work))
        print(f"{cell.name:>7}  {outcome.status:<8} {outcome.seconds:5.0f} s  {outcome.detail}", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    text = report(outcomes)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    print(text)
    return 0 if all(outcome.ok for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
