"""One row of the ``pyspark-kernel check`` table, and its four statuses."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark_kernel.errors import Problem

# A FAIL makes ``check`` exit 1 (cli/main.py); WARN and SKIP are read, not counted.
OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: str
    detail: str
    fix: str = ""

    @classmethod
    def failed(cls, check: str, error: Problem) -> CheckResult:
        """A FAIL row with the error's own problem and fix, the words install and the kernel use."""
        return cls(check, FAIL, error.problem, error.fix)
