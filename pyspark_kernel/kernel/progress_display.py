"""What a cell's progress display says: its jobs' stages counted, rendered as HTML with a text fallback.

Shared by both monitors (progress.py): the classic one fills a CellProgress by polling the JVM's status
tracker (progress_reader.py), the Spark Connect one from the server's progress callbacks. Either way a
display appears only once a cell has run for POLL_SECONDS, updates at most every MIN_UPDATE_SECONDS,
and ends in a one-line summary.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field

POLL_SECONDS = 0.5  # the first look at a cell's jobs, and the pace after; cells done sooner show nothing
MIN_UPDATE_SECONDS = 0.5  # at most two display updates a second, even for a 10,000-task job

# Where a display goes: publish(data, display_id, update), the kernel's message to the cell that runs the jobs.
Publisher = Callable[[dict[str, str], str, bool], None]


@dataclass
class StageProgress:
    stage_id: int
    name: str
    total: int
    done: int
    active: int
    failed: int

    @property
    def complete(self) -> bool:
        """Every task succeeded and none runs: what the tracker says of it will not change."""
        return self.done >= self.total and not self.active


FINISHED = ("SUCCEEDED", "FAILED")


@dataclass
class CellProgress:
    """What one cell's jobs have done so far."""

    started: float
    jobs: dict[int, str] = field(default_factory=dict)  # job id -> status
    stages: dict[int, StageProgress] = field(default_factory=dict)

    def counted(self) -> list[StageProgress]:
        """Stages that ran or will run: a finished job's stages with no task done were skipped
        (their shuffle output was reused), and counting their tasks would make a done cell look unfinished."""
        finished = all(status in FINISHED for status in self.jobs.values())
        return [s for s in self.stages.values() if not finished or s.done or s.failed or s.active]

    def summary(self, now: float) -> str:
        stages = self.counted()
        done, total, failed = (sum(getattr(s, name) for s in stages) for name in ("done", "total", "failed"))
        failures = f", {failed} failed tasks" if failed else ""
        return f"Spark: {plural(len(self.jobs), 'job')}, {plural(len(stages), 'stage')}, {done}/{total} tasks{failures} in {now - self.started:.1f} s"

    def render(self, now: float, final: bool) -> dict[str, str]:
        """text/plain and text/html for the current state; the final one is the summary alone."""
        summary = self.summary(now)
        running = [stage for stage in self.stages.values() if stage.done + stage.failed < stage.total or stage.active]
        if final or not running:
            text = summary
            rows = ""
        else:
            text = "\n".join(f"Stage {s.stage_id}: {s.done}/{s.total} tasks ({s.active} running)" for s in running) + "\n" + summary
            rows = "".join(
                f'<div><progress value="{s.done}" max="{max(s.total, 1)}" style="width:16em"></progress> '
                f"Stage {s.stage_id}{stage_label(s.name)}: {s.done}/{s.total} tasks"
                f"{f', {s.active} running' if s.active else ''}{f', {s.failed} failed' if s.failed else ''}</div>"
                for s in running
            )
        markup = f'<div class="pyspark-kernel-progress" style="font-family:monospace;font-size:0.85em">{rows}<div>{html.escape(summary)}</div></div>'
        return {"text/plain": text, "text/html": markup}


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def stage_label(name: str) -> str:
    """A stage's call site as HTML, or nothing for Scala's generated names ("$anonfun$… at …").

    Dollar signs are escaped: JupyterLab would typeset "$…$" in HTML output as LaTeX.
    """
    if not name or name.startswith("$"):
        return ""
    return f" <small>{html.escape(name[:60]).replace('$', '&#36;')}</small>"
