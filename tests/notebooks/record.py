"""The notebook corpus: run a notebook in a kernel, reduce its outputs to comparable text, compare.

As a script (``make corpus-reference``) it records the reference: every notebook of this folder run
through nbclient in *plain ipykernel* with pip's pyspark (the same Python as the venv), reduced and
written to ``reference/<name>.json``. tests/test_corpus.py runs the same notebooks in pyspark-kernel
and compares cell by cell with :func:`compare`.

    python tests/notebooks/record.py                 # all notebooks
    python tests/notebooks/record.py 03_pandas_udfs  # some

What is compared, per code cell: stdout and stderr (each concatenated over the cell), the text/plain
and text/html of each display_data/execute_result in order, and the error (ename and the first line
of evalue). Dropped on both sides: outputs whose metadata has the key ``pyspark_kernel`` (the
kernel's banner, progress displays and notices), ANSI colour codes, and run-to-run values
(app ids, clock times, durations, addresses, ports, the run's folder), replaced by placeholders.

A DataFrame's HTML table differs by design: pyspark's eager evaluation writes ``<table border='1'>``
with the names and cells and, when cut, "only showing top N rows"; pyspark-kernel's table
(kernel/frametable.py) adds each column's type under its name, escapes ``$``, and ends in "first N of
more rows" or "K rows". Both are reduced to the same form (:func:`comparable_table`): the header
names, each row's cell texts (HTML entities decoded), and "first N of more rows" when cut; the types
and the "K rows" line are dropped. So the corpus still proves the names, the values and the cut equal.

Cell metadata:
  ``tags: [raises-exception]``           the cell must raise: ename and evalue's first line compared
  ``pyspark_kernel_differs: REASON``     output legitimately differs in pyspark-kernel: only "no error"
  ``pyspark_kernel_differs_connect: R``  the same, in a Spark Connect kernel only
Notebook metadata ``{"pyspark_kernel": {"connect": true}}``: the notebook also runs in a Connect kernel.
"""

from __future__ import annotations

import difflib
import html
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "reference"
PLAIN_KERNEL = "plain-pyspark"
DIFFERS = "pyspark_kernel_differs"
DIFFERS_CONNECT = "pyspark_kernel_differs_connect"
OWN_OUTPUT = "pyspark_kernel"  # output metadata key by which the kernel marks its own outputs


def notebooks() -> list[Path]:
    return sorted(HERE.glob("[0-9]*.ipynb"))


def is_connect(path: Path) -> bool:
    return bool(nbformat.read(path, as_version=4).metadata.get("pyspark_kernel", {}).get("connect"))


# -- normalization ---------------------------------------------------------------------------------
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RUN_TO_RUN = [
    (re.compile(r"\blocal-\d{10,}\b"), "local-<id>"),
    (re.compile(r"\bapp-\d{14}-\d{4,}\b"), "app-<id>"),
    (re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "0x<addr>"),
    (re.compile(r"\bRan (\d+) tests? in \d+\.\d+s\b"), r"Ran \1 tests in <t>s"),
    (re.compile(r"\b\d+(\.\d+)? ?(ms|seconds|s)\b(?= elapsed| taken)"), "<duration>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}[.,]\d{3,}(Z|[+-]\d\d:?\d\d)?"), "<now>"),  # now, to the ms
    (re.compile(r"\bo\d+\.(?=\w+\b)"), "o<id>."),  # py4j object ids: "An error occurred while calling o43.select"
    (re.compile(r"\b(127\.0\.0\.1|localhost|0\.0\.0\.0):\d{2,5}\b"), r"\1:<port>"),
    (re.compile(r"[^\s'\"]*/(site|dist)-packages/"), "<site-packages>/"),  # where warnings come from; before <tmp>: a venv may live under /tmp
    (re.compile(r"(?:/private)?/(?:tmp|var/folders)/[^\s'\"\],)]*"), "<tmp>"),
]


def normalize(text: str, cwd: str | None = None) -> str:
    text = ANSI.sub("", text)
    if cwd:
        text = text.replace(os.path.realpath(cwd), "<cwd>").replace(cwd, "<cwd>")
    for pattern, replacement in RUN_TO_RUN:
        text = pattern.sub(replacement, text)
    return text


# Plain pyspark lets the JVM print on the kernel's stderr, which ipykernel forwards into the cell;
# pyspark-kernel sends the JVM's output to a log file instead. So these lines are dropped from the
# *reference* when recording (never from pyspark-kernel's outputs, where any such line is a failure).
JVM_STDERR = re.compile(
    r"^(Using Spark's default log4j profile"
    r"|Setting default log level to"
    r"|To adjust logging level use sc\.setLogLevel"
    r"|WARNING: Using incubator modules"
    r"|\d\d/\d\d/\d\d \d\d:\d\d:\d\d (WARN|INFO|ERROR) "  # log4j console lines: WARN NativeCodeLoader, WARN Utils, ...
    r"|\s*\[Stage \d+:"  # the console progress bar
    r")"
)


def drop_jvm_lines(text: str) -> str:
    kept = []
    for line in text.splitlines(keepends=True):
        if "\r" in line.rstrip("\n"):  # a progress bar redrawn in place, maybe ending in a real line
            segments = [part for part in line.rstrip("\n").split("\r") if part.strip() and not JVM_STDERR.match(part)]
            if not segments:
                continue
            line = segments[-1] + ("\n" if line.endswith("\n") else "")
        if not JVM_STDERR.match(line):
            kept.append(line)
    return "".join(kept)


# -- reduction ---------------------------------------------------------------------------------------
def deliberate(cell: Any) -> bool:
    return "raises-exception" in cell.get("metadata", {}).get("tags", [])


def reduce_cell(cell: Any, cwd: str | None = None) -> dict[str, Any]:
    """One code cell's outputs as comparable text (see the module docstring).

    A deliberate error's stderr is not kept: it is pyspark's log of the error (its JSON lines with the
    Java stack trace and py4j object ids), which only the error's name and first line stand for.
    """
    streams = {"stdout": "", "stderr": ""}
    results: list[dict[str, str]] = []
    error = None
    for output in cell.get("outputs", []):
        if OWN_OUTPUT in (output.get("metadata") or {}):
            continue
        kind = output["output_type"]
        if kind == "stream":
            streams[output["name"]] = streams.get(output["name"], "") + output["text"]
        elif kind in ("display_data", "execute_result"):
            data = output.get("data", {})
            results.append({mime: normalize(text_of(data[mime]), cwd) for mime in ("text/plain", "text/html") if mime in data})
            if "text/html" in results[-1]:
                results[-1]["text/html"] = comparable_table(results[-1]["text/html"])
        elif kind == "error":
            error = {"ename": output["ename"], "evalue": first_line(normalize(output["evalue"], cwd))}
    return {
        "stdout": normalize(streams["stdout"], cwd),
        "stderr": None if deliberate(cell) else normalize(streams["stderr"], cwd),
        "results": results,
        "error": error,
    }


# A Spark DataFrame table, pyspark's (Dataset.htmlString) or pyspark-kernel's (frametable.py); pandas'
# <table border="1" class="dataframe"> is neither and stays as it is.
SPARK_TABLE = re.compile(
    r"\A(?:<table border='1'>|<table class=\"pyspark-kernel-dataframe\">)(?P<table>.*?)</table>\s*"
    r"(?:only showing top (?P<top>\d+) rows?\s*"
    r"|<small class=\"pyspark-kernel-dataframe-rows\">(?:first (?P<first>\d+) of more rows|\d+ rows?)</small>\s*)?\Z",
    re.DOTALL,
)
TABLE_ROW = re.compile(r"<tr>(.*?)</tr>", re.DOTALL)
TABLE_CELL = re.compile(r"<t([hd])>(.*?)</t\1>", re.DOTALL)
TYPE_LINE = re.compile(r"<br><small[^>]*>.*?</small>", re.DOTALL)  # pyspark-kernel's type under a name


def comparable_table(text: str) -> str:
    """A DataFrame table as names, cells and its cut (see the module docstring); other HTML unchanged."""
    found = SPARK_TABLE.match(text)
    if found is None:
        return text
    lines = ["<DataFrame table>"]
    for row in TABLE_ROW.findall(found["table"]):
        lines.append(json.dumps([html.unescape(TYPE_LINE.sub("", cell)) for _, cell in TABLE_CELL.findall(row)], ensure_ascii=False))
    cut = found["top"] or found["first"]
    if cut:
        lines.append(f"first {cut} of more rows")
    return "\n".join(lines)


def text_of(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def reduce_notebook(nb: Any, cwd: str | None = None) -> list[dict[str, Any]]:
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        reduced = reduce_cell(cell, cwd)
        cells.append({"index": index, "source": cell.source.splitlines()[0] if cell.source else "", **reduced})
    return cells


# -- running ------------------------------------------------------------------------------------------
def run_notebook(source: Path | Any, kernel_name: str, timeout: int = 300, workdir: Path | None = None) -> tuple[Any, str, float]:
    """Execute a copy of ``source`` (a path or a notebook) in a fresh folder, its cwd, with nbclient.

    nbclient sends the first cell as soon as the kernel answers. Every cell runs (allow_errors), so a
    failure shows all the cells it spoils. Returns the executed notebook, the folder it ran in, and
    the seconds from kernel start to the end of the last cell.
    """
    from nbclient import NotebookClient

    stem = source.stem if isinstance(source, Path) else "notebook"
    folder = Path(tempfile.mkdtemp(prefix=f"corpus-{stem}-", dir=workdir))
    nb = nbformat.read(source, as_version=4) if isinstance(source, Path) else source
    client = NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=timeout,
        startup_timeout=120,
        allow_errors=True,
        record_timing=False,
        resources={"metadata": {"path": str(folder)}},
    )
    started = time.monotonic()
    client.execute()
    return nb, str(folder), time.monotonic() - started


# -- comparison -----------------------------------------------------------------------------------------
def compare(name: str, nb: Any, cwd: str | None, reference: dict[str, Any], connect: bool = False) -> list[str]:
    """The differences between an executed notebook and its reference, as readable paragraphs; [] if none."""
    problems: list[str] = []
    expected = {cell["index"]: cell for cell in reference["cells"]}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        want = expected.get(index)
        if want is None:
            problems.append(f"{name} cell {index}: not in the reference (re-record it: make corpus-reference)")
            continue
        got = reduce_cell(cell, cwd)
        head = f"{name} cell {index} [{(cell.source.splitlines() or [''])[0][:60]}]"
        expected_error = deliberate(cell)
        loose = cell.metadata.get(DIFFERS) or (connect and cell.metadata.get(DIFFERS_CONNECT))
        if got["error"] and not expected_error:
            trace = ANSI.sub("", "\n".join(next(o for o in cell.outputs if o.output_type == "error").get("traceback", [])))
            problems.append(f"{head}: unexpected error {got['error']['ename']}: {got['error']['evalue']}\n{indent(trace[-3000:])}")
            continue
        if expected_error and not got["error"]:
            problems.append(f"{head}: tagged raises-exception but did not raise")
            continue
        if loose:
            continue
        for field in ("error", "stdout", "stderr", "results"):
            if got[field] != want[field]:
                problems.append(f"{head}: {field} differs (- reference, + this kernel)\n{diff(want[field], got[field])}")
    return problems


def diff(want: Any, got: Any) -> str:
    def as_text(value):
        return (value if isinstance(value, str) else json.dumps(value, indent=1, ensure_ascii=False)).splitlines()

    lines = difflib.unified_diff(as_text(want), as_text(got), "reference", "this kernel", lineterm="", n=2)
    return indent("\n".join(list(lines)[2:]) or f"{want!r} != {got!r}")


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def load_reference(path: Path) -> dict[str, Any]:
    """The recorded reference, its tables reduced as now (comparable_table is idempotent): references
    recorded before it keep their pyspark HTML and need no re-recording."""
    reference: dict[str, Any] = json.loads((REFERENCE / f"{path.stem}.json").read_text())
    for cell in reference["cells"]:
        for result in cell["results"]:
            if "text/html" in result:
                result["text/html"] = comparable_table(result["text/html"])
    return reference


# -- recording ------------------------------------------------------------------------------------------
def install_plain_kernel(prefix: Path) -> Path:
    """ipykernel's own kernelspec, named plain-pyspark, with the corpus's environment in its env."""
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", PLAIN_KERNEL], check=True, capture_output=True, text=True)
    folder = prefix / "share" / "jupyter" / "kernels" / PLAIN_KERNEL
    spec = json.loads((folder / "kernel.json").read_text())
    spec["env"] = {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
    return folder


def record(paths: list[Path]) -> int:
    import ipykernel
    import pyspark

    failures = 0
    with tempfile.TemporaryDirectory(prefix="corpus-record-") as scratch:
        prefix = Path(scratch) / "prefix"
        install_plain_kernel(prefix)
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(prefix / "share" / "jupyter"), os.environ.get("JUPYTER_PATH")]))
        os.environ.pop("SPARK_REMOTE", None)
        REFERENCE.mkdir(exist_ok=True)
        for path in paths:
            nb, cwd, seconds = run_notebook(path, PLAIN_KERNEL, workdir=Path(scratch))
            for cell in nb.cells:  # the JVM's own stderr lines (see JVM_STDERR) are not part of the reference
                for output in cell.get("outputs", []):
                    if output.get("output_type") == "stream" and output.get("name") == "stderr":
                        output["text"] = drop_jvm_lines(output["text"])
            cells = reduce_notebook(nb, cwd)
            unexpected = [f"cell {cell['index']}: {cell['error']}" for cell in cells if cell["error"] and not deliberate(nb.cells[cell["index"]])]
            missing = [
                f"cell {cell['index']}: tagged raises-exception but did not raise"
                for cell in cells
                if not cell["error"] and deliberate(nb.cells[cell["index"]])
            ]
            status = "ok" if not (unexpected or missing) else "FAILED"
            print(f"{path.stem}: {status} in {seconds:.1f} s", *unexpected, *missing, sep="\n  ", flush=True)
            if unexpected or missing:
                failures += 1
                continue
            reference = {
                "notebook": path.name,
                "recorded_with": f"plain ipykernel {ipykernel.__version__}, pyspark {pyspark.__version__}, "
                f"Python {sys.version.split()[0]}; by tests/notebooks/record.py",
                "cells": cells,
            }
            (REFERENCE / f"{path.stem}.json").write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n")
    return failures


def main(argv: list[str]) -> int:
    chosen = [path for path in notebooks() if not argv or path.stem in argv or path.name in argv]
    if not chosen:
        print(f"no notebook matches {argv}", file=sys.stderr)
        return 2
    return 1 if record(chosen) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
