"""The job view under a cell (``%spark progress full``, the default) with a real kernel and JVM.

A job with a shuffle and a task that fails once and succeeds on its retry (master ``local[2,2]``: two
threads, two attempts a task), as a person's cell would run it: the live view's table, stages, first
failure, links and timeline, and the final ``<details>`` summary that is saved with the notebook. The
browser's view of the same is tests/e2e/test_job_view.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import KernelHarness, install

pytestmark = pytest.mark.slow

RETRIED_SHUFFLE = (
    "import time\n"
    "from pyspark import TaskContext\n"
    "def first_try_fails(rows):\n"
    "    task = TaskContext.get()\n"
    "    if task.partitionId() == 0 and task.attemptNumber() == 0:\n"
    "        raise ValueError('the first attempt of partition 0 fails')\n"
    "    time.sleep(0.4)\n"
    "    return rows\n"
    "pairs = sc.parallelize(range(4000), 8).mapPartitions(first_try_fails).map(lambda n: (n % 5, 1))\n"
    "sorted(pairs.reduceByKey(lambda a, b: a + b).collect())"
)


@pytest.fixture(scope="module")
def kernel(prefix: Path) -> Iterator[KernelHarness]:
    folder = install(prefix, "--name", "job-view", "--master", "local[2,2]", "--replace")
    harness = KernelHarness(folder.name)
    harness.value("spark.range(1).count()")
    yield harness
    harness.shutdown()


class Elements(HTMLParser):
    """The elements of a display's HTML with their attributes and text, to ask for them as a browser's DOM would."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str], list[str]]] = []
        self._open: list[int] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {name: value or "" for name, value in attrs}, []))
        if tag not in ("rect", "line", "polyline", "br"):
            self._open.append(len(self.found) - 1)

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for index in self._open:
            self.found[index][2].append(data)

    def select(self, tag: str, cls: str | None = None) -> list[tuple[dict[str, str], str]]:
        return [(attrs, "".join(text)) for name, attrs, text in self.found if name == tag and (cls is None or cls in attrs.get("class", "").split())]


def view_outputs(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        output
        for output in result["outputs"]
        if output["type"] in ("display_data", "update_display_data") and "pyspark-kernel-jobs" in output["data"].get("text/html", "")
    ]


def test_the_live_view_shows_jobs_stages_a_retried_failure_links_and_a_timeline(kernel: KernelHarness) -> None:
    started = time.monotonic()
    result = kernel.run(RETRIED_SHUFFLE)
    elapsed = time.monotonic() - started
    assert result["reply"]["status"] == "ok", result["outputs"]
    views = view_outputs(result)
    assert len(views) >= 3, [output["type"] for output in result["outputs"]]
    assert len(views) <= 2 * elapsed + 2, f"{len(views)} updates in {elapsed:.1f} s: at most two a second"
    live = [Elements(output["data"]["text/html"]) for output in views[:-1]]
    last_live = live[-1]
    names = [text for _, text in last_live.select("tr", "pyspark-kernel-job")]
    assert any(re.search(r"collect at In\[\d+\]:10", name) for name in names), names
    stages = last_live.select("tr", "pyspark-kernel-stage")
    assert len(stages) >= 2 or any(len(view.select("tr", "pyspark-kernel-stage")) >= 2 for view in live), stages
    failures = [text for view in live for _, text in view.select("td", "pyspark-kernel-failure")]
    assert any(text.strip() == "ValueError: the first attempt of partition 0 fails" for text in failures), failures
    links = [attrs["href"] for attrs, _ in last_live.select("a", "pyspark-kernel-ui-link")]
    assert any(re.search(r"/jobs/job/\?id=\d+$", href) for href in links) and any(re.search(r"/stages/stage/\?id=\d+&attempt=\d+$", href) for href in links), (
        links
    )
    assert last_live.select("svg", "pyspark-kernel-timeline") and last_live.select("rect", "stage") and last_live.select("polyline", "active-tasks")
    tasks = [text for view in live for _, text in view.select("td", "pyspark-kernel-tasks")]
    assert len(set(tasks)) > 1, f"the tasks counts never changed: {tasks}"
    assert "Job " in views[0]["data"]["text/plain"] and "Stage " in views[0]["data"]["text/plain"], views[0]["data"]["text/plain"]

    final = views[-1]
    summary_line = final["data"]["text/plain"]
    assert re.fullmatch(r"Spark: 1 job, 2 stages, 16/16 tasks, 1 failed tasks in [\d.]+ s", summary_line), summary_line
    saved = Elements(final["data"]["text/html"])
    assert [text for _, text in saved.select("summary")] == [summary_line]
    assert saved.select("details", "pyspark-kernel-summary") and len(saved.select("tr", "pyspark-kernel-stage")) == 2
    assert all(attrs["data-status"] == "COMPLETE" for attrs, _ in saved.select("tr", "pyspark-kernel-stage"))
    shuffle = [cells for cells in saved.select("tr", "pyspark-kernel-job")]
    assert shuffle and re.search(r"\d+(\.\d)? (B|KiB)", shuffle[0][1]), f"the job's shuffle bytes are missing: {shuffle}"


def test_a_reused_shuffle_shows_its_stage_as_skipped_and_counts_only_what_ran(kernel: KernelHarness) -> None:
    result = kernel.run(
        "import time\n"
        "counts = sc.parallelize(range(1000), 4).map(lambda n: (n % 3, 1)).reduceByKey(lambda a, b: a + b)\n"
        "counts.count()\n"
        "counts.map(lambda kv: time.sleep(0.5) or kv).collect()"
    )
    final = Elements(view_outputs(result)[-1]["data"]["text/html"])
    statuses = [attrs["data-status"] for attrs, _ in final.select("tr", "pyspark-kernel-stage")]
    assert statuses.count("SKIPPED") == 1, statuses
    skipped = [text for attrs, text in final.select("tr", "pyspark-kernel-stage") if attrs["data-status"] == "SKIPPED"]
    assert "skipped" in skipped[0], skipped
    summary_line = view_outputs(result)[-1]["data"]["text/plain"]
    done, total = re.search(r"(\d+)/(\d+) tasks", summary_line).groups()  # type: ignore[union-attr]
    assert done == total, summary_line


def test_written_and_read_bytes_show_in_their_columns(kernel: KernelHarness, tmp_path: Path) -> None:
    target = tmp_path / "numbers.parquet"
    result = kernel.run(
        "import time\n"
        f"spark.range(0, 200_000, numPartitions=4).selectExpr('id', 'id * 2 as twice').write.parquet({str(target)!r})\n"
        f"spark.read.parquet({str(target)!r}).selectExpr('sum(twice)').collect()\n"
        "time.sleep(0.6)"
    )
    final = Elements(view_outputs(result)[-1]["data"]["text/html"])
    header = [text for _, text in final.select("th")]
    jobs = final.select("tr", "pyspark-kernel-job")
    assert "Input" in header and "Output" in header and "Spill" not in header, f"bytes columns are shown where some stage has bytes: {header}"
    cells = [re.findall(r"\d+(?:\.\d)? (?:B|KiB|MiB)", text) for _, text in jobs]
    assert any(cells), f"no bytes in any job row: {jobs}"


def test_progress_modes_switch_between_the_view_the_bars_and_nothing(kernel: KernelHarness) -> None:
    slow = "sc.parallelize(range(8), 4).map(lambda n: __import__('time').sleep(0.4) or n).sum()"
    try:
        switched = kernel.run("%spark progress bar")
        assert "Spark progress display: bar" in "".join(output.get("text", "") for output in switched["outputs"]), switched["outputs"]
        bars = kernel.run(slow)
        html = [output["data"]["text/html"] for output in bars["outputs"] if output["type"] in ("display_data", "update_display_data")]
        assert html and all("pyspark-kernel-progress" in markup and "pyspark-kernel-job-table" not in markup for markup in html), html
        kernel.run("%spark progress off")
        off = kernel.run(slow)
        assert not [output for output in off["outputs"] if output["type"] in ("display_data", "update_display_data")], off["outputs"]
        usage = kernel.run("%spark progress sideways")
        assert "usage: %spark progress full|bar|off" in "".join(output.get("text", "") for output in usage["outputs"])
    finally:
        kernel.run("%spark progress full")
    full = kernel.run(slow)
    assert view_outputs(full), full["outputs"]


def test_the_saved_view_reads_in_nbconvert_html_with_no_kernel(kernel: KernelHarness, tmp_path: Path) -> None:
    """A frontend replaces the display with each update, so a saved notebook holds the final view; saved
    as such, nbconvert's HTML keeps its <details>, table and SVG: readable with no kernel."""
    import nbformat
    from nbconvert import HTMLExporter

    result = kernel.run(RETRIED_SHUFFLE)
    final = view_outputs(result)[-1]
    saved = nbformat.v4.new_output("display_data", data=final["data"], metadata=final.get("metadata", {}))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(RETRIED_SHUFFLE, outputs=[saved])])
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)
    page, _ = HTMLExporter().from_notebook_node(nbformat.read(path, as_version=4))
    assert '<details class="pyspark-kernel-summary">' in page and '<svg class="pyspark-kernel-timeline"' in page
    assert "ValueError: the first attempt of partition 0 fails" in page and 'class="pyspark-kernel-job-table"' in page
