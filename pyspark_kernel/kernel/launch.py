"""The kernel process's start: ``python -m pyspark_kernel -f CONNECTION_FILE`` comes here (__main__.py).

The JVM's launch (prelaunch.py) begins in PySparkKernel.__init__, once ipykernel is imported and its
shell built, not here: on 2 cores the JVM's start took the CPU those imports need (bench row 1).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

# Set by a pyspark driver for the Python processes it starts: inherited by a kernel (a Jupyter server
# started from a pyspark shell or a Spark job), they would make this kernel's pyspark attach to that
# other JVM instead of launching its own.
INHERITED_GATEWAY_VARS = ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET")


class PinnedPackages:
    """A meta-path finder that imports the named top-level packages from where they were found at
    launch, whatever sys.path holds by the time they are imported."""

    def __init__(self, names: tuple[str, ...]) -> None:
        from importlib.util import find_spec

        specs = {name: find_spec(name) for name in names}
        self.locations = {name: [str(Path(spec.origin).parent.parent)] for name, spec in specs.items() if spec and spec.origin}

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None) -> ModuleSpec | None:
        from importlib.machinery import PathFinder

        location = self.locations.get(fullname)
        return PathFinder.find_spec(fullname, location) if location else None


def main() -> None:
    """Start the kernel: sys.path and inherited variables made safe, then ipykernel (which begins the JVM's launch)."""
    # As ipykernel_launcher does: `python -m` puts the working folder (the notebook's) first on
    # sys.path, where a folder named pyspark/ would shadow the Spark this kernelspec chose.
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    # IPython puts the working folder back (before site-packages) once the kernel exists, while Spark
    # is imported in the background: pin where pyspark and py4j come from now.
    sys.meta_path.insert(0, PinnedPackages(("pyspark", "py4j")))
    for name in INHERITED_GATEWAY_VARS:
        os.environ.pop(name, None)
    # Secret --env variables live in the kernelspec's 0600 file, not kernel.json: set them before the JVM.
    from pyspark_kernel.secrets import load_private_env

    problem = load_private_env(os.environ)
    if problem:
        print(problem, file=sys.stderr)
    # A shared local Connect server that must be started (the first notebook of a kernelspec --remote
    # 'local[*]') starts now: its JVM is the longest wait there is, and later notebooks spawn nothing.
    from pyspark_kernel.kernel import prelaunch

    prelaunch.begin_local_server_now()
    from ipykernel.kernelapp import IPKernelApp

    from pyspark_kernel.kernel.ipkernel import PySparkKernel

    IPKernelApp.launch_instance(kernel_class=PySparkKernel)
