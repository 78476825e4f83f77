"""The notebook corpus (tests/notebooks/) in pyspark-kernel, compared cell by cell with plain ipykernel.

The reference outputs were recorded from plain ipykernel with pip's pyspark and the same Python
(``make corpus-reference``, tests/notebooks/record.py, which also explains what is compared). Each
notebook runs through nbclient, which sends the first cell the moment the kernel answers: a first
cell ``SparkSession.builder...getOrCreate()`` meets the kernel's own start in progress.

The matrix: every notebook in eager mode (the default); a subset chosen for what the start mode
changes (``sc`` bound or not, the session stopped and rebuilt, a builder naming a master) in lazy
and none; the notebooks marked ``connect`` in a Spark Connect kernel; one notebook through
``jupyter nbconvert --execute``. PYSPARK_KERNEL_CORPUS=full runs every notebook in every mode.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from conftest import cli, install
from nbformat.v4 import new_code_cell, new_notebook
from notebooks.record import (
    compare,
    is_connect,
    load_reference,
    notebooks,
    reduce_cell,
    run_notebook,
)

pytestmark = [pytest.mark.slow, pytest.mark.corpus]

NOTEBOOKS = notebooks()
FULL = os.environ.get("PYSPARK_KERNEL_CORPUS", "").lower() == "full"
# What lazy and none change is how `spark`/`sc` come to be, so each runs the notebooks where that
# shows: in lazy, a builder naming master("local") meets the kernel's first start, and a TestCase stops
# the kernel's session; in none, sc = spark.sparkContext from the user's own builder, and a session
# stopped and built again. (The full matrix adds ~7 min per mode on 2 cores: PYSPARK_KERNEL_CORPUS=full.)
MODE_SUBSET = {
    "lazy": {"06_sql_temp_views", "10_unittest_in_notebook"},
    "none": {"01_rdd_basics", "11_stop_and_rebuild"},
}
NBCONVERT_NOTEBOOK = "13_errors_then_working"


def matrix() -> list[pytest.param]:
    cases = []
    for mode in ("eager", "lazy", "none"):
        for path in NOTEBOOKS:
            if mode == "eager" or FULL or path.stem in MODE_SUBSET[mode]:
                cases.append(pytest.param(mode, path, id=f"{mode}-{path.stem}"))
    return cases


@pytest.fixture(scope="module")
def corpus_kernel(prefix: Path) -> Callable[[str], str]:
    """The kernelspec name for a start mode, installed with the CLI on first use."""
    installed: dict[str, str] = {}

    def kernel(mode: str) -> str:
        if mode not in installed:
            folder = install(prefix, "--name", f"corpus-{mode}", "--start", mode, "--env", "SPARK_LOCAL_IP", "127.0.0.1", "--replace")
            installed[mode] = folder.name
        return installed[mode]

    return kernel


def check(path: Path, nb: nbformat.NotebookNode, cwd: str, connect: bool = False) -> None:
    problems = compare(path.stem, nb, cwd, load_reference(path), connect=connect)
    assert not problems, f"{len(problems)} cell(s) of {path.name} differ from plain ipykernel:\n\n" + "\n\n".join(problems)


@pytest.mark.parametrize(("mode", "path"), matrix())
def test_notebook_matches_plain_ipykernel(mode: str, path: Path, corpus_kernel: Callable[[str], str], tmp_path: Path) -> None:
    nb, cwd, seconds = run_notebook(path, corpus_kernel(mode), workdir=tmp_path)
    print(f"{path.stem} in {mode}: {seconds:.1f} s")
    check(path, nb, cwd)


@pytest.mark.parametrize("mode", ["eager", "lazy"])
def test_first_cell_getorcreate_is_the_kernels_session(mode: str, corpus_kernel: Callable[[str], str], tmp_path: Path) -> None:
    """The race this corpus was started for: getOrCreate sent the instant the kernel answers."""
    nb = new_notebook(
        cells=[
            new_code_cell("from pyspark.sql import SparkSession\nspark = SparkSession.builder.getOrCreate()"),
            new_code_cell("print(spark.sparkContext.applicationId == sc.applicationId)"),
        ]
    )
    nb, cwd, _ = run_notebook(nb, corpus_kernel(mode), workdir=tmp_path)
    first, second = (reduce_cell(cell, cwd) for cell in nb.cells)
    assert first == {"stdout": "", "stderr": "", "results": [], "error": None}, first
    assert second == {"stdout": "True\n", "stderr": "", "results": [], "error": None}, second


def test_nbconvert_execute(corpus_kernel: Callable[[str], str], tmp_path: Path) -> None:
    """The same comparison for a notebook run as CI jobs run them: jupyter nbconvert --execute."""
    path = next(path for path in NOTEBOOKS if path.stem == NBCONVERT_NOTEBOOK)
    kernel = corpus_kernel("eager")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(path, work / path.name)
    jupyter = Path(sys.executable).parent / "jupyter"
    result = subprocess.run(
        [
            str(jupyter),
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            f"--ExecutePreprocessor.kernel_name={kernel}",
            "--ExecutePreprocessor.timeout=300",
            "--output",
            "executed.ipynb",
            path.name,
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    check(path, nbformat.read(work / "executed.ipynb", as_version=4), str(work))


# The kinds of Spark Connect kernel the corpus runs in: a kernelspec naming a running server (sc://...), and
# one whose kernels share a local server of their own ('local[*]': "a notebook that runs in a plain Connect
# kernel runs here too").
# make test runs the local kind (the new one, whose server the kernels start); `make corpus` both.
CONNECT_KINDS = (pytest.param("server", marks=pytest.mark.extended), "local")
LIMIT = "NotInSparkConnect"  # the kernel's one message for RDDs, sc and SparkContext (connectlimits.py)
# The notebooks that use what Spark Connect lacks, in a Connect kernel: each failing cell and its error.
# LIMIT is the kernel's message; a NameError follows from a cell that failed (a name it would have made);
# PATH_NOT_FOUND from the server resolving a relative path in its own folder, not the notebook's (15 writes
# data/ with Python, then reads it with Spark). Every other cell must match plain ipykernel's reference.
CONNECT_LIMITED = {
    "01_rdd_basics": {1: LIMIT, 2: LIMIT, 3: "NameError", 4: LIMIT, 6: LIMIT, 7: LIMIT, 8: LIMIT, 9: LIMIT, 10: LIMIT, 11: "NameError"},
    "02_create_dataframes": {1: LIMIT, 6: LIMIT},
    "11_stop_and_rebuild": {1: LIMIT, 2: LIMIT, 3: LIMIT},
    "15_json_nested": {1: LIMIT, 6: LIMIT, **dict.fromkeys((2, 3, 4, 5, 7), "AnalysisException")},
}


@pytest.fixture(scope="module", params=CONNECT_KINDS)
def connect_corpus_kernel(request: pytest.FixtureRequest, prefix: Path, connect_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Connect kernelspec of each kind. The local kind's kernels get a TMPDIR of this module's own, so the
    server they share is the corpus's alone, and it is stopped at the end."""
    name = f"corpus-connect-{request.param}"
    if request.param == "server":
        yield install(prefix, "--name", name, "--remote", connect_server, "--env", "SPARK_LOCAL_IP", "127.0.0.1", "--replace").name
        return
    tmpdir = tmp_path_factory.mktemp("corpus-local-server")
    yield install(prefix, "--name", name, "--remote", "local[*]", "--env", "TMPDIR", str(tmpdir), "--replace").name
    stopped = cli("server", "stop", env={**os.environ, "TMPDIR": str(tmpdir)})
    assert stopped.returncode == 0, stopped.stderr


@pytest.mark.parametrize("path", [pytest.param(path, id=path.stem) for path in NOTEBOOKS if is_connect(path)])
def test_connect_notebook_matches_plain_ipykernel(path: Path, connect_corpus_kernel: str, tmp_path: Path) -> None:
    """A notebook written for local mode, in a Connect kernel: the kernel's remote wins, with a warning."""
    nb, cwd, seconds = run_notebook(path, connect_corpus_kernel, workdir=tmp_path)
    print(f"{path.stem} in {connect_corpus_kernel}: {seconds:.1f} s")
    check(path, nb, cwd, connect=True)


@pytest.mark.parametrize("path", [pytest.param(path, id=path.stem) for path in NOTEBOOKS if path.stem in CONNECT_LIMITED])
def test_rdd_notebook_in_connect_says_so_in_one_message(path: Path, connect_corpus_kernel: str, tmp_path: Path) -> None:
    """A notebook that uses RDDs or sc, in a Connect kernel: each such cell shows the one message naming
    the classic kernelspec, no traceback; the cells that need none of it still match plain ipykernel."""
    nb, cwd, _ = run_notebook(path, connect_corpus_kernel, workdir=tmp_path)
    expected = CONNECT_LIMITED[path.stem]
    errors = {index: output for index, cell in enumerate(nb.cells) for output in cell.get("outputs", []) if output.output_type == "error"}
    assert {index: error.ename for index, error in errors.items()} == expected, {index: error.evalue[:200] for index, error in errors.items()}
    for error in errors.values():
        if error.ename == LIMIT:
            assert len(error.traceback) == 1 and "Kernel > Change Kernel" in error.evalue, error.traceback
    others = [
        problem
        for problem in compare(path.stem, nb, cwd, load_reference(path), connect=True)
        if not any(problem.startswith(f"{path.stem} cell {index} [") for index in expected)
    ]
    assert not others, "\n\n".join(others)


def test_corpus_shape() -> None:
    """What the issue asked of the corpus: 12+ notebooks, 4+ for Connect, one naming master("local") there."""
    assert len(NOTEBOOKS) >= 12
    connect = [path for path in NOTEBOOKS if is_connect(path)]
    assert len(connect) >= 4
    first_cells = [next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code").source for path in connect]
    assert any('.master("local")' in source for source in first_cells)
    for path in connect:
        source = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")
        assert not re.search(r"sparkContext|\bsc\.|\.rdd\b|parallelize", source), f"{path.name} uses RDDs or the SparkContext"
    for path in NOTEBOOKS:
        assert (path.parent / "reference" / f"{path.stem}.json").is_file(), f"no reference for {path.name}: make corpus-reference"
