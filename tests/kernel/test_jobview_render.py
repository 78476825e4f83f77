"""The job view's rendering with no JVM: what a saved notebook will hold for odd names, many stages, no UI."""

from __future__ import annotations

import time

from pyspark_kernel.kernel import jobview
from pyspark_kernel.kernel.progress_display import CellProgress, JobProgress, StageProgress
from pyspark_kernel.kernel.progress_store import reason
from pyspark_kernel.variables import progress_mode


def cell(ui: str | None = "/pyspark-ui/k1/", stages: int = 2) -> CellProgress:
    progress = CellProgress(started=time.monotonic() - 3, full=True, ui=ui, cores=4)
    progress.jobs[7] = "RUNNING"
    progress.details[7] = JobProgress(7, "collect at In[3]:2", "RUNNING", 0.1, None, list(range(stages)))
    for stage_id in range(stages):
        progress.stages[stage_id] = StageProgress(stage_id, f"map at In[3]:{stage_id}", 10, 5, 2, 0, status="ACTIVE", began=0.2 * stage_id)
    progress.samples = [(0.5, 2), (1.0, 4), (1.5, 3)]
    return progress


def test_names_and_failures_are_escaped_and_dollars_are_not_typeset() -> None:
    progress = cell()
    progress.details[7].name = "collect at <b>In[3]</b>:2 $x$"
    progress.stages[0].failure = "ValueError: <script>alert(1)</script> costs $5 and $6"
    markup = jobview.render(progress, time.monotonic(), final=False)["text/html"]
    assert "<script>" not in markup and "<b>In" not in markup and "$" not in markup
    assert "&lt;script&gt;" in markup and "&#36;5" in markup


def test_links_go_through_the_route_and_are_left_out_without_a_ui() -> None:
    markup = jobview.render(cell(), time.monotonic(), final=False)["text/html"]
    assert 'href="/pyspark-ui/k1/jobs/job/?id=7"' in markup and 'href="/pyspark-ui/k1/stages/stage/?id=1&amp;attempt=0"' in markup
    assert "pyspark-kernel-ui-link" not in jobview.render(cell(ui=None), time.monotonic(), final=False)["text/html"]


def test_the_final_view_is_a_details_whose_summary_is_the_text() -> None:
    progress = cell()
    progress.jobs[7] = progress.details[7].status = "SUCCEEDED"
    for stage in progress.stages.values():
        stage.done, stage.active, stage.status, stage.ended = 10, 0, "COMPLETE", 2.0
    data = jobview.render(progress, time.monotonic(), final=True)
    assert data["text/plain"].startswith("Spark: 1 job, 2 stages, 20/20 tasks in ")
    assert f'<summary style="cursor:pointer">{data["text/plain"]}</summary>' in data["text/html"]
    assert data["text/html"].count("<details") == 1 and "pyspark-kernel-timeline" in data["text/html"]


def test_a_cell_of_hundreds_of_stages_draws_a_bounded_timeline_and_lists_them_all() -> None:
    markup = jobview.render(cell(stages=300), time.monotonic(), final=False)["text/html"]
    assert markup.count('class="pyspark-kernel-stage"') == 300
    assert markup.count('<rect class="stage"') == jobview.MAX_STAGES_DRAWN


def test_skipped_stages_show_as_skipped_and_are_not_counted() -> None:
    progress = cell()
    progress.jobs[7] = "SUCCEEDED"
    progress.stages[0].status, progress.stages[0].done, progress.stages[0].active = "SKIPPED", 0, 0
    progress.stages[1].status, progress.stages[1].done, progress.stages[1].active = "COMPLETE", 10, 0
    data = jobview.render(progress, time.monotonic(), final=True)
    assert 'data-status="SKIPPED"' in data["text/html"] and ">skipped<" in data["text/html"]
    assert ", 1 stage, 10/10 tasks" in data["text/plain"]


def test_a_python_workers_error_reads_as_its_exception() -> None:
    error = (
        "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
        '  File "<stdin>", line 4, in f\n'
        "ValueError: the first attempt fails\n SQLSTATE: 38000\n\n"
        "\tat org.apache.spark.api.python.BasePythonRunner.handle(PythonRunner.scala:1)\n"
    )
    assert reason(error) == "ValueError: the first attempt fails"
    assert reason("java.lang.OutOfMemoryError: Java heap space\n\tat x.y(z)") == "java.lang.OutOfMemoryError: Java heap space"


def test_progress_modes_as_users_write_them() -> None:
    assert [progress_mode(word) for word in ("full", "ON", "bar", "off", "false", "sideways", "")] == ["full", "full", "bar", "off", "off", None, None]


def test_a_cell_of_hundreds_of_jobs_lists_its_last_ones_and_counts_them_all() -> None:
    progress = cell()
    for job_id in range(100, 400):
        progress.jobs[job_id] = "SUCCEEDED"
        progress.details[job_id] = JobProgress(job_id, "count at In[4]:3", "SUCCEEDED", 0.1, 0.2, [])
    data = jobview.render(progress, time.monotonic(), final=True)
    assert data["text/html"].count('class="pyspark-kernel-job"') == jobview.MAX_JOBS_LISTED
    assert "276 earlier jobs of this cell not listed" in data["text/html"] and data["text/plain"].startswith("Spark: 301 jobs")


def test_a_connect_query_that_never_reported_done_ends_as_ended_not_running() -> None:
    """Connect's handler is called with ``done`` only for a query that finished; one that failed or was
    interrupted just stops reporting. (A stand-in session: only registerProgressHandler is called here.)"""
    from types import SimpleNamespace

    from pyspark_kernel.kernel.progress_connect import ConnectProgressMonitor

    sent: list[dict[str, str]] = []
    monitor = ConnectProgressMonitor(SimpleNamespace(registerProgressHandler=lambda handler: None), lambda data, display_id, update: sent.append(data))
    monitor.full = True
    monitor.begin("tag")
    assert monitor._progress is not None
    monitor._progress.started -= 1.0  # the cell has run a second: past the first poll's half second
    stage = SimpleNamespace(stage_id=3, num_tasks=4, num_completed_tasks=1, num_bytes_read=2048, done=False)
    monitor(stages=[stage], inflight_tasks=2, operation_id="op-1", done=False)
    assert 'data-status="RUNNING"' in sent[-1]["text/html"] and "2.0 KiB" in sent[-1]["text/html"]
    monitor.end()
    assert 'data-status="ENDED"' in sent[-1]["text/html"] and "<details" in sent[-1]["text/html"] and "Spark Connect reports" in sent[-1]["text/html"]
