"""The full job view of a cell (``%spark progress full``, the default): its jobs and their stages as a
table, and a timeline of the stages and of the tasks running against the cores, as HTML and inline SVG
with a text fallback. No frontend extension: it is a display updated in place, so it works wherever
Jupyter output does.

The final view is a ``<details>`` whose one-line summary opens to the final table. Everything is inline
(styles, SVG, links to the Spark UI through the kernel's route), so a saved notebook keeps it readable with
no kernel: in JupyterLab, Notebook 7, VS Code, nbconvert's HTML and static viewers.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable

from pyspark_kernel.kernel.progress_display import CellProgress, JobProgress, StageProgress, escaped, plural

CELL = "padding:1px 6px;text-align:left;white-space:nowrap"
NUMBER = "padding:1px 6px;text-align:right;white-space:nowrap"
COLOURS = {"COMPLETE": "#3c9a4f", "SUCCEEDED": "#3c9a4f", "ACTIVE": "#3b7dd8", "RUNNING": "#3b7dd8", "FAILED": "#d64541", "PENDING": "#999"}
TIMELINE_WIDTH = 560  # the drawing's width, labels excluded
LABEL_WIDTH = 64
ROW_HEIGHT = 12
TASKS_HEIGHT = 36
MAX_STAGES_DRAWN = 40  # a cell of hundreds of stages draws its last 40 (the table has them all)
MAX_SAMPLES_DRAWN = 240
MAX_JOBS_LISTED = 25  # a cell that loops over hundreds of jobs lists its last 25: every update resends the table


def render(progress: CellProgress, now: float, final: bool) -> dict[str, str]:
    """text/plain and text/html of the view; the final one is the summary, opening to the final table."""
    summary = progress.summary(now)
    elapsed = now - progress.started
    table = job_table(progress, elapsed)
    timeline = timeline_svg(progress, elapsed)
    note = f'<div style="opacity:0.7">{html.escape(progress.missing)}</div>' if final and progress.missing else ""
    if final:
        body = f'<details class="pyspark-kernel-summary"><summary style="cursor:pointer">{escaped(summary)}</summary>{table}{timeline}{note}</details>'
        text = summary
    else:
        body = f"{table}{timeline}<div>{escaped(summary)}</div>"
        text = "\n".join([*text_lines(progress, elapsed), summary])
    markup = f'<div class="pyspark-kernel-progress pyspark-kernel-jobs" style="font-size:0.85em;line-height:1.35">{body}</div>'
    return {"text/plain": text, "text/html": markup}


def jobs_in_order(progress: CellProgress) -> list[tuple[JobProgress, list[StageProgress]]]:
    """The cell's jobs (the last MAX_JOBS_LISTED), each with its known stages, in the order Spark numbered them."""
    shown = []
    for job_id in sorted(progress.jobs)[-MAX_JOBS_LISTED:]:
        job = progress.details.get(job_id) or JobProgress(job_id, "", progress.jobs[job_id])
        stages = [progress.stages[stage_id] for stage_id in sorted(job.stage_ids) if stage_id in progress.stages]
        shown.append((job, stages))
    return shown


BYTES = {"input_bytes": "Input", "output_bytes": "Output", "shuffle_read": "Shuffle read", "shuffle_write": "Shuffle write", "spilled": "Spill"}


def job_table(progress: CellProgress, elapsed: float) -> str:
    """The cell's jobs, each followed by its stages; a bytes column only where some stage has bytes, and a
    failed stage's first failure on a line of its own under it (a long reason would widen every row)."""
    columns = [name for name in BYTES if any(getattr(stage, name) for stage in progress.stages.values())]
    head = f'<th style="{CELL}"></th><th style="{CELL}">Started by</th><th style="{CELL}">Status</th><th style="{NUMBER}">Duration</th><th style="{CELL}">Tasks</th>'
    head += "".join(f'<th style="{NUMBER}">{BYTES[name]}</th>' for name in columns)
    rows = []
    earlier = len(progress.jobs) - MAX_JOBS_LISTED
    if earlier > 0:
        rows.append(
            f'<tr><td colspan="{5 + len(columns)}" style="{CELL};opacity:0.7">{plural(earlier, "earlier job")} of this cell not listed (the Spark UI has them)</td></tr>'
        )
    for job, stages in jobs_in_order(progress):
        rows.append(job_row(job, stages, progress.ui, elapsed, columns))
        for stage in stages:
            rows.append(stage_row(stage, progress.ui, elapsed, columns))
            if stage.failure:
                rows.append(
                    f'<tr><td></td><td colspan="{4 + len(columns)}" style="{CELL};white-space:normal;color:#d64541" class="pyspark-kernel-failure">'
                    f"{escaped(stage.failure)}</td></tr>"
                )
    return (
        '<table class="pyspark-kernel-job-table" style="border-collapse:collapse;margin:2px 0;font-variant-numeric:tabular-nums">'
        f'<thead><tr style="border-bottom:1px solid rgba(128,128,128,0.5)">{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def job_row(job: JobProgress, stages: list[StageProgress], ui: str | None, elapsed: float, columns: list[str]) -> str:
    ran = [stage for stage in stages if stage.status != "SKIPPED"]
    done, total, failed, active = (sum(getattr(stage, name) for stage in ran) for name in ("done", "total", "failed", "active"))
    label = link(f"{job.kind} {job.job_id}", f"{ui}jobs/job/?id={job.job_id}" if ui and job.kind == "Job" else None)
    return (
        f'<tr class="pyspark-kernel-job" data-job-id="{job.job_id}" data-status="{job.status}" style="border-top:1px solid rgba(128,128,128,0.25)">'
        f'<td style="{CELL}"><b>{label}</b></td><td style="{CELL}">{escaped(job.name)}</td>'
        f'<td style="{CELL}">{status_text(job.status)}</td><td style="{NUMBER}">{duration(job.began, job.ended, elapsed)}</td>'
        f'<td style="{CELL}" class="pyspark-kernel-tasks">{task_bar(done, total, active, failed)}</td>'
        + "".join(f'<td style="{NUMBER}">{size(sum(getattr(stage, name) for stage in ran))}</td>' for name in columns)
        + "</tr>"
    )


def stage_row(stage: StageProgress, ui: str | None, elapsed: float, columns: list[str]) -> str:
    attempt = f" (retry {stage.attempt})" if stage.attempt else ""
    label = link(f"Stage {stage.stage_id}", f"{ui}stages/stage/?id={stage.stage_id}&attempt={stage.attempt}" if ui else None)
    skipped = stage.status == "SKIPPED"
    tasks = "skipped" if skipped else task_bar(stage.done, stage.total, stage.active, stage.failed)
    dim = ' style="opacity:0.6"' if skipped else ""
    return (
        f'<tr class="pyspark-kernel-stage" data-stage-id="{stage.stage_id}" data-status="{stage.status or "ACTIVE"}"{dim}>'
        f'<td style="{CELL};padding-left:1.5em">{label}{attempt}</td><td style="{CELL}">{escaped(stage.name[:60])}</td>'
        f'<td style="{CELL}">{status_text(stage.status)}</td><td style="{NUMBER}">{"" if skipped else duration(stage.began, stage.ended, elapsed)}</td>'
        f'<td style="{CELL}" class="pyspark-kernel-tasks">{tasks}</td>'
        + "".join(f'<td style="{NUMBER}">{size(getattr(stage, name))}</td>' for name in columns)
        + "</tr>"
    )


def task_bar(done: int, total: int, active: int, failed: int) -> str:
    """A bar of done (green) and running (blue) tasks, and the counts: ``12/40 (+4 running, 1 failed)``."""
    whole = max(total, 1)
    bar = (
        '<span style="display:inline-block;width:6em;height:0.7em;vertical-align:middle;background:rgba(128,128,128,0.2);margin-right:4px">'
        f'<span style="display:inline-block;height:100%;width:{100 * min(done, whole) / whole:.1f}%;background:#3c9a4f"></span>'
        f'<span style="display:inline-block;height:100%;width:{100 * min(active, whole - min(done, whole)) / whole:.1f}%;background:#3b7dd8"></span></span>'
    )
    extra = ", ".join(part for part in (f"{active} running" if active else "", f"{failed} failed" if failed else "") if part)
    return f"{bar}{done}/{total}{f' ({extra})' if extra else ''}"


def timeline_svg(progress: CellProgress, elapsed: float) -> str:
    """Each stage as a bar over the cell's time, and under them the running tasks against the cores."""
    stages = [stage for stage in progress.stages.values() if stage.began is not None and stage.status != "SKIPPED"][-MAX_STAGES_DRAWN:]
    if not stages:
        return ""
    span = max(elapsed, max((stage.ended or 0.0) for stage in stages), 0.1)
    scale = TIMELINE_WIDTH / span

    def x(seconds: float) -> float:
        return LABEL_WIDTH + max(seconds, 0.0) * scale

    bars = []
    for row, stage in enumerate(stages):
        y = 4 + row * ROW_HEIGHT
        began = stage.began or 0.0
        ended = stage.ended if stage.ended is not None else elapsed
        colour = COLOURS.get(stage.status or ("COMPLETE" if stage.complete else "ACTIVE"), "#3b7dd8")
        bars.append(
            f'<text x="{LABEL_WIDTH - 4}" y="{y + 9}" text-anchor="end">Stage {stage.stage_id}</text>'
            f'<rect class="stage" x="{x(began):.1f}" y="{y}" width="{max(x(ended) - x(began), 1.5):.1f}" height="{ROW_HEIGHT - 3}" fill="{colour}">'
            f"<title>Stage {stage.stage_id}: {began:.1f}–{ended:.1f} s, {stage.done}/{stage.total} tasks</title></rect>"
        )
    top = 8 + len(stages) * ROW_HEIGHT
    height = top + TASKS_HEIGHT + 16
    return (
        f'<svg class="pyspark-kernel-timeline" width="{LABEL_WIDTH + TIMELINE_WIDTH + 8}" height="{height}" '
        f'style="display:block;font:10px sans-serif;fill:currentColor" xmlns="http://www.w3.org/2000/svg">'
        f"{''.join(bars)}{tasks_chart(progress.samples, progress.cores, top, x)}"
        f'<text x="{LABEL_WIDTH}" y="{height - 2}">0 s</text><text x="{LABEL_WIDTH + TIMELINE_WIDTH}" y="{height - 2}" text-anchor="end">{span:.1f} s</text></svg>'
    )


def tasks_chart(samples: list[tuple[float, int]], cores: int, top: float, x: Callable[[float], float]) -> str:
    """Running tasks over time (a line) under a dashed line at the session's cores: idle cores show as the gap."""
    points = samples[-MAX_SAMPLES_DRAWN:]
    ceiling = max([cores, *(count for _, count in points), 1])

    def y(count: int) -> float:
        return top + TASKS_HEIGHT - TASKS_HEIGHT * count / ceiling

    line = " ".join(f"{x(seconds):.1f},{y(count):.1f}" for seconds, count in points)
    cores_line = (
        f'<line x1="{LABEL_WIDTH}" x2="{LABEL_WIDTH + TIMELINE_WIDTH}" y1="{y(cores):.1f}" y2="{y(cores):.1f}" stroke="currentColor" stroke-opacity="0.5" stroke-dasharray="3,3"/>'
        if cores
        else ""
    )
    peak = max((count for _, count in points), default=0)
    label = f"tasks (peak {peak}{f' of {cores} cores' if cores else ''})"
    return (
        f'<text x="{LABEL_WIDTH - 4}" y="{top + 10}" text-anchor="end">tasks</text>'
        f'<rect x="{LABEL_WIDTH}" y="{top}" width="{TIMELINE_WIDTH}" height="{TASKS_HEIGHT}" fill="currentColor" fill-opacity="0.04"/>'
        f"{cores_line}"
        f'<polyline class="active-tasks" points="{line}" fill="none" stroke="#3b7dd8" stroke-width="1.5"><title>{label}</title></polyline>'
        f'<text x="{LABEL_WIDTH + TIMELINE_WIDTH}" y="{top + 10}" text-anchor="end" fill-opacity="0.7">{label}</text>'
    )


def text_lines(progress: CellProgress, elapsed: float) -> Iterable[str]:
    """The table as plain text, for frontends that show no HTML."""
    for job, stages in jobs_in_order(progress):
        yield f"{job.kind} {job.job_id}  {job.name}  {job.status}  {duration(job.began, job.ended, elapsed)}".rstrip()
        for stage in stages:
            if stage.status == "SKIPPED":
                yield f"  Stage {stage.stage_id}: skipped"
                continue
            counts = (
                f"{stage.done}/{stage.total} tasks"
                + (f" ({stage.active} running)" if stage.active else "")
                + (f", {stage.failed} failed" if stage.failed else "")
            )
            yield f"  Stage {stage.stage_id}: {counts}" + (f"  first failure: {stage.failure}" if stage.failure else "")


def link(text: str, href: str | None) -> str:
    if not href:
        return html.escape(text)
    return f'<a class="pyspark-kernel-ui-link" href="{html.escape(href)}" target="_blank" rel="noopener noreferrer">{html.escape(text)}</a>'


def status_text(status: str) -> str:
    colour = COLOURS.get(status)
    word = html.escape(status.lower() or "running")
    return f'<span style="color:{colour}">{word}</span>' if colour else word


def duration(began: float | None, ended: float | None, elapsed: float) -> str:
    if began is None:
        return ""
    seconds = (ended if ended is not None else elapsed) - began
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{max(seconds, 0.0):.1f} s"


def size(count: int) -> str:
    """Bytes as the Spark UI writes them (KiB, MiB …); nothing for none."""
    if not count:
        return ""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""
