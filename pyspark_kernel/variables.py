"""Every ``PYSPARK_KERNEL_*`` environment variable: one table, which the code reads its names from and
the configuration reference (docs/) is generated from, so the two cannot drift apart.

Set in a kernelspec with ``pyspark-kernel install --env NAME VALUE`` (or in kernel.json's ``env``),
unless the table says who else sets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

ON_WORDS = ("on", "1", "true", "yes")
OFF_WORDS = ("off", "0", "false", "no")


@dataclass(frozen=True)
class Variable:
    name: str
    values: str  # what it may be set to
    default: str  # what holds when it is unset
    meaning: str  # what it does, in a sentence or two
    set_by: str = "you, in the kernelspec (install --env NAME VALUE)"


START = Variable(
    "PYSPARK_KERNEL_START",
    "eager | lazy | none",
    "eager",
    "When the SparkSession starts: with the kernel (in the background), on first use of spark/sc, or never "
    "(your own builder makes it, and the kernel adopts it).",
    "install --start",
)
WARMUP = Variable(
    "PYSPARK_KERNEL_WARMUP",
    "on | off",
    "on for local masters, off on clusters",
    "The idle warm-up: the shapes of first cells run on tiny data while no cell runs. On a cluster it would "
    "ask for executors, so it runs there only when set to on.",
)
PROGRESS = Variable("PYSPARK_KERNEL_PROGRESS", "on | off", "on", "The live progress display under a running cell (also %spark progress on|off).")
EARLY_JVM = Variable(
    "PYSPARK_KERNEL_EARLY_JVM",
    "on | off",
    "on",
    "Launch the driver JVM before ipykernel is imported, the longest wait of a kernel's start; off launches it from the kernel's start instead.",
)
UI_PROXY = Variable(
    "PYSPARK_KERNEL_UI_PROXY",
    "a URL prefix",
    "unset",
    "Where the notebook's Spark UI link points when the UI is reached through a proxy of your own "
    "(<prefix><port>/jobs/); the server extension's route is used when there is one.",
)
UI_ROUTE = Variable(
    "PYSPARK_KERNEL_UI_ROUTE",
    "a URL path",
    "unset",
    "The prefix of the Jupyter server's authenticated route to each kernel's Spark UI.",
    "the server extension (server/uiproxy.py), inherited by the kernels that server starts",
)
BASE_URL = Variable(
    "PYSPARK_KERNEL_BASE_URL", "a URL path", "unset", "The Jupyter server's base URL, for a UI link through jupyter-server-proxy.", "the provisioner, at launch"
)
KERNEL_ID = Variable(
    "PYSPARK_KERNEL_ID",
    "a kernel id",
    "unset",
    "The Jupyter kernel id of this kernel, handed to a pooled kernel with the notebook.",
    "the provisioner, at launch and at a pool's hand-over",
)
PRIVATE_CONF = Variable(
    "PYSPARK_KERNEL_PRIVATE_CONF",
    "a file path",
    "unset",
    "The kernelspec's 0600 properties file with its secret settings (secrets.py), read by spark-submit "
    "(--properties-file) and by the kernel for a Spark Connect token.",
    "install, when a setting holds a secret",
)

VARIABLES = (START, WARMUP, PROGRESS, EARLY_JVM, UI_PROXY, UI_ROUTE, BASE_URL, KERNEL_ID, PRIVATE_CONF)


def switch(environ: Mapping[str, str], variable: Variable) -> bool | None:
    """An on/off variable as set: True (on), False (off), or None (unset or unreadable: its default holds)."""
    value = environ.get(variable.name, "").strip().lower()
    if value in ON_WORDS:
        return True
    if value in OFF_WORDS:
        return False
    return None
