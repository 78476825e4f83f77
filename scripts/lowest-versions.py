"""Print each dependency of pyproject.toml (and of its connect extra) with its floor and the version installed in this Python.

`make test-lowest` runs it in the venv that uv filled with ``--resolution lowest-direct``, so the log
shows which versions the quick suite and the real kernels ran on. A dependency installed above its
floor is marked: another dependency needs more (or that floor has no release), so the floor is looser
than what was tested, and should be raised to what is shown.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def floor(requirement: Requirement) -> str | None:
    """The lower bound of a requirement (``>=`` or ``==``), if it has one."""
    bounds = [spec.version for spec in requirement.specifier if spec.operator in (">=", "==")]
    return max(bounds, key=Version) if bounds else None


def main() -> int:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    requirements = [Requirement(spec) for spec in project["dependencies"] + project["optional-dependencies"]["connect"]]
    print(f"Dependencies of {project['name']} in {sys.prefix}:")
    missing = 0
    for requirement in requirements:
        lowest = floor(requirement)
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            print(f"  {requirement.name:<24} floor {lowest or '-':<10} NOT INSTALLED")
            missing += 1
            continue
        above = lowest is not None and Version(installed).release[: len(Version(lowest).release)] != Version(lowest).release
        note = "  (above the floor: raise it to what was tested)" if above else ""
        print(f"  {requirement.name:<24} floor {lowest or '-':<10} installed {installed}{note}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
