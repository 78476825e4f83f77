"""The machine a bench ran on, in one line: numbers from another machine are not comparable."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import psutil


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor() or "unknown CPU")


def java_version() -> str:
    try:
        return subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "no java"


def machine_line() -> str:
    import pyspark

    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {os.cpu_count()} cores ({cpu_model()}) · "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB · Python {platform.python_version()} · pyspark {pyspark.__version__} · {java_version()}"
    )
