"""The command line, ``pyspark-kernel`` (main.py): install, list, show, remove and check kernelspecs;
``server`` shows or stops the shared local Spark Connect servers.

Runs in the user's shell, never in a kernel or a Jupyter server: nothing here imports the kernel's
runtime (kernel/) or Spark (import-linter contracts in pyproject.toml).
"""

# The subcommands; ``python -m pyspark_kernel`` hands these to the command line, anything else starts a kernel.
COMMANDS = ("install", "list", "show", "remove", "check", "server")
