"""Can a kernelspec's ZMQ channels be encrypted? The facts ``pyspark-kernel check`` reports.

Any local account can subscribe to a kernel's iopub port on 127.0.0.1 and read every output (message
signing stops forging, not reading). jupyter_client (>= 8.10) encrypts the channels with CurveZMQ when
Jupyter runs with ``--KernelManager.transport_encryption=auto`` (or ``required``) and the kernelspec
declares ``"supported_encryption": ["curve"]``; the kernel's ipykernel (>= 7.3) must then apply the
keys, or its clients cannot talk to it. Three things to know, each cheap to ask.
"""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from typing import Any

# The first ipykernel that reads the CurveZMQ keys of its connection file (IPKernelApp.curve_secretkey).
IPYKERNEL_WITH_CURVE = (7, 3)
VERSION_PROBE = "from importlib.metadata import version; print(version('ipykernel'))"


def declares_curve(metadata: dict[str, Any]) -> bool:
    """kernel.json's ``metadata.supported_encryption`` names curve, as jupyter_client reads it."""
    declared = metadata.get("supported_encryption")
    names = [declared] if isinstance(declared, str) else declared if isinstance(declared, list) else []
    return "curve" in {str(name).strip().lower() for name in names}


def template_metadata() -> dict[str, Any]:
    """The metadata of the kernel.json that install writes (kernelspecs/kernel.json)."""
    template: dict[str, Any] = json.loads(resources.files("pyspark_kernel.kernelspecs").joinpath("kernel.json").read_text())
    return dict(template["metadata"])


def pyzmq_has_curve() -> bool:
    """This Python's pyzmq (the Jupyter server's, when check runs in its environment) has CurveZMQ:
    without it, jupyter_client refuses transport_encryption "auto" and "required" outright."""
    import zmq

    return bool(zmq.has("curve"))


def kernel_ipykernel(python: str, env: dict[str, str]) -> str | None:
    """The ipykernel version the kernel's Python has, or None when it cannot say."""
    try:
        result = subprocess.run([python, "-c", VERSION_PROBE], env=env, capture_output=True, text=True, timeout=120, cwd="/")
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def applies_curve_keys(ipykernel_version: str) -> bool:
    """An ipykernel of this version applies the keys its connection file carries."""
    release = tuple(int(part) for part in ipykernel_version.split(".")[:2] if part.isdigit())
    return release >= IPYKERNEL_WITH_CURVE
