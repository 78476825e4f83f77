"""The bench's plumbing: paired repetitions, medians with spread, a quiet terminal, one progress line a row.

Kept apart from bench/run.py so that a row there is only what it measures and how its target is judged.
"""

from __future__ import annotations

import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

NOISY_LOGGERS = ("py4j", "pip", "jupyter_client", "traitlets", "asyncio", "urllib3")


@dataclass
class Line:
    """One line of the table: what this kernel took, what its same-run baseline took, their ratio.

    ``samples`` and ``base`` are seconds per repetition; ``ratio`` is what the row's verdict judges
    (None when the row judges something else, kept in ``facts``)."""

    label: str
    samples: list[float]
    baseline: str
    ratio: float | None = None
    ratio_text: str = ""
    base: list[float] = field(default_factory=list)
    variant: str = ""
    facts: dict[str, object] = field(default_factory=dict)
    mine_text: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def mine(self) -> str:
        return self.mine_text or spread(self.samples)


def spread(samples: list[float]) -> str:
    """Median and min-max: one number alone hides how noisy the machine was."""
    return f"{statistics.median(samples):.3f} s ({min(samples):.2f}-{max(samples):.2f})"


def median_interval(values: list[float], level: float = 0.9, draws: int = 2000) -> tuple[float, float]:
    """A bootstrap interval of the median of ``values`` (seeded: the same samples print the same
    interval): how far a median of this many noisy rounds can be from the one it estimates."""
    draw = random.Random(0).choices
    medians = sorted(statistics.median(draw(values, k=len(values))) for _ in range(draws))
    tail = int(draws * (1 - level) / 2)
    return medians[tail], medians[-tail - 1]


def ratio_line(label: str, mine: list[float], base: list[float], base_name: str, variant: str = "") -> Line:
    ratio = statistics.median(mine) / statistics.median(base)
    return Line(label, mine, f"{base_name} {spread(base)}", ratio, f"{ratio:.2f}×", base, variant)


class Progress:
    """One line per row on the terminal's stderr: rewritten in place on a terminal, else printed once done."""

    def __init__(self, terminal: TextIO) -> None:
        self.terminal = terminal
        self.live = terminal.isatty()
        self.text = ""
        self.started = time.monotonic()

    def begin(self, text: str) -> None:
        self.text, self.started = text, time.monotonic()
        self.step("...")

    def step(self, detail: str) -> None:
        if self.live:
            self.terminal.write(f"\r\033[K{self.text}: {detail}")
            self.terminal.flush()

    def end(self, detail: str) -> None:
        ending = f"{self.text}: {detail} ({time.monotonic() - self.started:.0f} s)"
        self.terminal.write(f"\r\033[K{ending}\n" if self.live else f"{ending}\n")
        self.terminal.flush()


def paired(actions: dict[str, Callable[[], float | None]], reps: int, progress: Progress) -> dict[str, list[float]]:
    """``reps`` rounds, each running every action once, in an order that flips every round (A B, B A, ...),
    so that a machine that gets busier or quieter moves both sides alike. An action returns its own
    seconds, or None to be timed whole."""
    samples: dict[str, list[float]] = {name: [] for name in actions}
    names = list(actions)
    for round_number in range(reps):
        for name in names if round_number % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            seconds = actions[name]()
            samples[name].append(time.perf_counter() - started if seconds is None else seconds)
        progress.step(f"{round_number + 1}/{reps}")
    return samples


class Quiet:
    """Sends everything the bench's children write (kernels, JVMs, spark-submit) to ``log``, not the terminal.

    The process's own fds 1 and 2 point at the log while it runs, so every child inherits them; the
    table and the progress lines go to the terminal through copies of the original fds.
    """

    def __init__(self, log: Path) -> None:
        self.log = log
        self.stdout: TextIO = sys.stdout
        self.stderr: TextIO = sys.stderr

    def __enter__(self) -> Quiet:
        sys.stdout.flush(), sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        self.stdout = os.fdopen(os.dup(self._saved[0]), "w", buffering=1, encoding="utf-8")
        self.stderr = os.fdopen(os.dup(self._saved[1]), "w", buffering=1, encoding="utf-8")
        self._log = open(self.log, "ab", buffering=0)
        os.dup2(self._log.fileno(), 1), os.dup2(self._log.fileno(), 2)
        self._text_log = open(self.log, "a", buffering=1, encoding="utf-8")
        sys.stdout = sys.stderr = self._text_log
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING, force=True)
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        return self

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
        os.dup2(self._saved[0], 1), os.dup2(self._saved[1], 2)
        os.close(self._saved[0]), os.close(self._saved[1])
        sys.stdout, sys.stderr = self.stdout, self.stderr
        logging.basicConfig(stream=self.stderr, level=logging.WARNING, force=True)
        self._text_log.close()
        self._log.close()
