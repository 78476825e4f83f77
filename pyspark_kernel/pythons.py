"""Ask a Python about itself: its version, the pyspark it imports, whether it can run this kernel.

The kernel may run in another Python than the one running ``install`` or ``check`` (``--python``), and
with another environment (a kernelspec's env), so these facts are read by running that Python once,
here and nowhere else: install, check and the launcher plugin all ask through this module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pyspark_kernel.errors import SparkEnvironmentError


def pip_pyspark_home() -> Path | None:
    """The folder of the pyspark package this Python imports; pip's pyspark is a whole Spark."""
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent


@dataclass(frozen=True)
class PythonFacts:
    """What one Python says about itself, asked once: its version, its pyspark, whether it has this kernel."""

    executable: Path
    version: str  # major.minor
    pyspark_home: Path | None  # the folder of the pyspark package it would import, or None
    pyspark_version: str | None  # None: importing pyspark failed (pyspark_error says why)
    pyspark_error: str | None
    has_kernel: bool


PROBE = """
import importlib.util as util, json, sys
spec = util.find_spec("pyspark")
facts = {"version": "%d.%d" % sys.version_info[:2], "origin": spec.origin if spec else None,
         "has_kernel": util.find_spec("pyspark_kernel") is not None, "pyspark_version": None, "error": None}
try:
    import pyspark
    facts["pyspark_version"] = pyspark.__version__
except Exception as error:
    facts["error"] = "%s: %s" % (type(error).__name__, error)
print(json.dumps(facts))
"""


def executable_file(python: str | os.PathLike[str]) -> Path:
    """The file ``python`` names (a bare name looked up on PATH), refused unless it can be executed.
    No process is started: install checks ``--python`` with this before anything slow."""
    executable = Path(python).expanduser()
    if not executable.is_absolute():
        found = shutil.which(str(executable))
        executable = Path(found) if found else executable.absolute()
    if not executable.is_file() or not os.access(executable, os.X_OK):
        raise SparkEnvironmentError(
            f"Python {python} is not an executable file.", "pass the full path of a Python 3 interpreter that has pyspark-jupyter-kernel installed."
        )
    return executable


def probe_python(python: str | os.PathLike[str], environ: dict[str, str] | None = None) -> PythonFacts:
    """Ask ``python`` (with ``environ``, e.g. a kernelspec's env) for its version and its pyspark.

    The one probe of a Python: install, check and the launcher plugin all ask through it. It runs in
    "/" so that the probe does not import the source tree it happens to be run from.
    """
    executable = executable_file(python)
    try:
        result = subprocess.run([str(executable), "-c", PROBE], env=environ, capture_output=True, text=True, timeout=120, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SparkEnvironmentError(f"Python {python} could not be run: {error}.", "pass a working Python 3.") from None
    try:
        facts = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        detail = result.stderr.strip()[-200:] or "no output"
        raise SparkEnvironmentError(f"Python {python} is not a working Python 3 ({detail}).", "pass the full path of a Python 3 interpreter.") from None
    origin = facts["origin"]
    return PythonFacts(executable, facts["version"], Path(origin).parent if origin else None, facts["pyspark_version"], facts["error"], facts["has_kernel"])


def kernel_python(python: str | os.PathLike[str]) -> PythonFacts:
    """The Python that will run the kernel (``--python``): it must import pyspark_kernel. This process's
    own Python answers without being started again."""
    if Path(python).expanduser().absolute() == Path(sys.executable).absolute():
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        return PythonFacts(Path(sys.executable), version, pip_pyspark_home(), None, None, True)
    facts = probe_python(python)
    if not facts.has_kernel:
        raise SparkEnvironmentError(
            f"--python {python} cannot import pyspark_kernel, so it cannot run this kernel.",
            f"{facts.executable} -m pip install pyspark-jupyter-kernel",
        )
    return facts


def python_imports(python: str, environ: dict[str, str], modules: tuple[str, ...]) -> str | None:
    """None when ``python`` imports every module with ``environ``, else the error's last line."""
    probe = "; ".join(f"import {module}" for module in modules)
    try:
        result = subprocess.run([python, "-c", probe], env=environ, capture_output=True, text=True, timeout=120, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    return None if result.returncode == 0 else (result.stderr.strip().splitlines() or ["failed"])[-1]
