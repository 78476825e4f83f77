"""What a cell's progress display knows and says: its jobs and stages, rendered as HTML with a text fallback.

Shared by both monitors (progress.py): the classic one fills a CellProgress by polling the JVM
(progress_reader.py for the bars, progress_store.py for the full job view), the Spark Connect one from
the server's progress callbacks. Either way a display appears only once a cell has run for
POLL_SECONDS, updates at most every MIN_UPDATE_SECONDS, and ends in a one-line summary. The bars are
rendered here; the full view (``%spark progress full``, the default) in jobview.py.
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
    # What the full view adds (progress_store.py, or what Spark Connect reports); the bars need none of it.
    attempt: int = 0
    status: str = ""  # the status store's: ACTIVE, COMPLETE, FAILED, PENDING or SKIPPED; "" when not known
    input_bytes: int = 0
    output_bytes: int = 0
    shuffle_read: int = 0
    shuffle_write: int = 0
    spilled: int = 0  # memory and disk spill
    failure: str = ""  # the first failed task's reason, or the stage's own failure
    began: float | None = None  # seconds after the cell began
    ended: float | None = None

    @property
    def complete(self) -> bool:
        """Every task succeeded and none runs: what the tracker says of it will not change."""
        return self.done >= self.total and not self.active

    @property
    def settled(self) -> bool:
        """Nothing about the stage will change: read no more of it."""
        return self.status in ("COMPLETE", "FAILED", "SKIPPED") or (not self.status and self.complete)


@dataclass
class JobProgress:
    """One job as the full view shows it: what started it (``collect at In[3]:2``), when, its tasks."""

    job_id: int
    name: str
    status: str
    began: float | None = None  # seconds after the cell began
    ended: float | None = None
    stage_ids: list[int] = field(default_factory=list)
    kind: str = "Job"  # Spark Connect reports operations ("Query"), not jobs: they have no page in the UI


FINISHED = ("SUCCEEDED", "FAILED")


@dataclass
class CellProgress:
    """What one cell's jobs have done so far."""

    started: float
    jobs: dict[int, str] = field(default_factory=dict)  # job id -> status
    stages: dict[int, StageProgress] = field(default_factory=dict)
    full: bool = False  # the job view (jobview.py) rather than the bars
    details: dict[int, JobProgress] = field(default_factory=dict)  # job id -> the full view's facts
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds after the cell began, active tasks)
    cores: int = 0  # task slots the session had when the cell's first poll ran
    ui: str | None = None  # the Spark UI's root as the browser reaches it (…/pyspark-ui/<key>/), for links
    missing: str = ""  # what this session's reports do not carry, said under the final table (Spark Connect)

    def counted(self) -> list[StageProgress]:
        """Stages that ran or will run: a finished job's stages with no task done were skipped
        (their shuffle output was reused), and counting their tasks would make a done cell look unfinished."""
        finished = all(status in FINISHED for status in self.jobs.values())
        return [s for s in self.stages.values() if s.status != "SKIPPED" and (not finished or s.done or s.failed or s.active)]

    def summary(self, now: float) -> str:
        stages = self.counted()
        done, total, failed = (sum(getattr(s, name) for s in stages) for name in ("done", "total", "failed"))
        failures = f", {failed} failed tasks" if failed else ""
        return f"Spark: {plural(len(self.jobs), 'job')}, {plural(len(stages), 'stage')}, {done}/{total} tasks{failures} in {now - self.started:.1f} s"

    def sample(self, now: float) -> None:
        """Note the tasks running now, for the job view's active-tasks line (the bars draw none)."""
        if self.full:
            self.samples.append((now - self.started, sum(stage.active for stage in self.stages.values())))

    def render(self, now: float, final: bool) -> dict[str, str]:
        """text/plain and text/html for the current state: the job view, or the bars; the final one is
        the summary (which, in the job view, opens to the final table)."""
        if self.full:
            from pyspark_kernel.kernel import jobview  # the bars' kernels never import the view

            return jobview.render(self, now, final)
        return self.render_bars(now, final)

    def render_bars(self, now: float, final: bool) -> dict[str, str]:
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
    return f" <small>{escaped(name[:60])}</small>"


def escaped(text: str) -> str:
    """HTML-escaped, and ``$`` too: JupyterLab would typeset ``$…$`` in HTML output as LaTeX. The one
    escape of the kernel's HTML outputs (the bars, the job view, DataFrame tables)."""
    return html.escape(text).replace("$", "&#36;")
