"""Errors for users, as data: what is wrong and the fix, rendered once.

Every error a user can meet (a bad install option, a Spark that cannot run, a kernel whose Spark cannot
start) carries ``problem`` and ``fix`` as separate fields. The CLI prints ``str(error)``, ``check``
puts each field in its own column, and the kernel shows the same text in a cell, so the words are
written once, where the fault is found, and never split back out of a string.
"""

from __future__ import annotations


def error_line(error: BaseException) -> str:
    """An error as a cell shows it in place of a traceback: its type in red, then its message."""
    return f"\x1b[0;31m{type(error).__name__}\x1b[0m: {error}"


class Problem(Exception):
    """A fault the user can act on: ``problem`` names it (with the value they gave), ``fix`` what to do."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem, fix)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem}\nFix: {self.fix}" if self.fix else self.problem

    def _render_traceback_(self) -> list[str]:
        """IPython shows just the message in a cell, not a traceback through the kernel's modules."""
        return [error_line(self)]


class KernelSpecError(Problem, ValueError):
    """A kernelspec request that cannot be honoured (bad option, name taken, unknown kernel)."""


class ConfPairError(Problem, ValueError):
    """A setting that is not KEY=VALUE (``--conf`` at install, ``%spark conf`` in a cell)."""


class SparkEnvironmentError(Problem, ValueError):
    """A Spark environment that cannot run a kernel: no Spark, no Java, a mismatched pyspark."""


class SparkStartError(Problem, RuntimeError):
    """The kernel's Spark could not start, or is gone."""


class SparkLaunchError(Problem, RuntimeError):
    """The provisioner cannot launch a kernel: its Spark environment does not resolve."""
