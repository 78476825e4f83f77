"""The Spark settings a kernel's JVM launch adds to the kernelspec's own: what makes Spark fit a notebook.

Each applies unless the kernelspec's ``--conf`` sets that key. Read by the kernel for every launch
(kernel/settings.py) and by the class-data archive's training run (cli/cds.py), which must run what a
kernel runs.
"""

from __future__ import annotations

from pyspark_kernel import isolation, submitargs
from pyspark_kernel.ports import PORT_TRIES

# A DataFrame as a cell's result renders as a table (kernel/frametable.py). Per-session SQL settings: a
# Spark Connect kernel sets them on the session it makes (backends/connect.py), a classic one at launch.
DISPLAY_DEFAULTS = {
    "spark.sql.repl.eagerEval.enabled": "true",
    "spark.sql.repl.eagerEval.maxNumRows": "20",
}
# Notebook defaults, each applied unless the kernelspec's --conf sets it.
NOTEBOOK_DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",  # the console bar would land in cells as stderr noise
    **DISPLAY_DEFAULTS,
    # An interrupted cell's Python tasks (UDFs, pandas) hold their cores until Spark kills their worker,
    # this long after the cancel (Spark's default is 2 s): an interrupt should free the cores at once.
    "spark.python.task.killTimeout": "500ms",
}
# Local masters: the UI takes spark.ui.port (4040) or one of the next spark.port.maxRetries (16) ports;
# when the UIs of the machine's other kernels and Sparks hold all 17, SparkUI.bind calls System.exit(1)
# and the JVM dies inside the kernel's getOrCreate (py4j: "Connection refused"). So the search goes as
# far as the kernel's own port pick (ports.py), as Spark's own tests widen it. Not on a cluster, where
# spark.driver.port and the retries after it may be the range a firewall opens to executors.
LOCAL_DEFAULTS = {"spark.port.maxRetries": str(PORT_TRIES)}


def launch_defaults(submit_args: str) -> dict[str, str]:
    """The notebook defaults for a JVM of these spark-submit arguments, and for a local master also the
    authenticated, encrypted RPC (isolation.py) and the wide UI port window. The caller drops the keys
    the kernelspec sets itself."""
    master = submitargs.parse(submit_args).master
    local = isolation.makes_own_secret(master)  # a local master (Spark makes the RPC secret in the JVM)
    return {**NOTEBOOK_DEFAULTS, **isolation.rpc_defaults(master), **(LOCAL_DEFAULTS if local else {})}
