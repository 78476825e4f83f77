"""Every ``PYSPARK_KERNEL_*`` environment variable: one table, which the code reads its names from and
the configuration reference (docs/) is generated from, so the two cannot drift apart.

Set in a kernelspec with ``pyspark-kernel install --env NAME VALUE`` (or in kernel.json's ``env``),
unless the table says who else sets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

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
    "on for local masters (local, local[N], local-cluster[...]), off on clusters",
    "The idle warm-up of a classic session: the shapes of first cells run on tiny data while no cell runs, "
    "cancelled the moment a cell starts. On a cluster it would ask for executors, so it runs there only when "
    "set to on; off turns it off anywhere. A Spark Connect kernel never warms up (its server warms itself).",
)
PROGRESS = Variable(
    "PYSPARK_KERNEL_PROGRESS",
    "full | bar | off",
    "full",
    "The live view under a cell that runs Spark jobs. full: a table of the cell's jobs and stages (tasks, failures, "
    "bytes, links to the Spark UI) and a timeline, ending in a one-line summary that opens to the final table and is "
    "saved with the notebook; bar: a progress bar per running stage and the summary line; off: nothing. on means full. "
    "%spark progress full|bar|off switches it in a running kernel.",
)
EARLY_JVM = Variable(
    "PYSPARK_KERNEL_EARLY_JVM",
    "on | off",
    "on",
    "Launch the driver JVM as soon as ipykernel's shell is built, before the session's start imports pyspark (the JVM's start "
    "is the longest wait of a kernel's start); off launches it from the session's start instead. Only a kernel that starts its session at once on a local Spark (PYSPARK_KERNEL_START=eager, "
    "no SPARK_REMOTE) launches one early.",
)
UI_PROXY = Variable(
    "PYSPARK_KERNEL_UI_PROXY",
    "a URL prefix",
    "unset",
    "Where the notebook's Spark UI link points when the UI is reached through a proxy of your own "
    "(<prefix><port>/jobs/). The server extension's route comes first for a UI the kernel protects (a local master).",
)
UI_ROUTE = Variable(
    "PYSPARK_KERNEL_UI_ROUTE",
    "a URL path",
    "unset",
    "The prefix of the Jupyter server's authenticated route to each kernel's Spark UI (<prefix><key>/jobs/), "
    "used for a UI the kernel protects (a local master whose UI is not exposed on purpose).",
    "the server extension (server/uiproxy.py), inherited by the kernels that server starts",
)
BASE_URL = Variable(
    "PYSPARK_KERNEL_BASE_URL",
    "a URL path",
    "unset",
    "The Jupyter server's base URL: with jupyter-server-proxy installed, and no route of the server extension, "
    "the Spark UI link goes through <base>proxy/<port>/ (JUPYTERHUB_SERVICE_PREFIX wins over it).",
    "the provisioner, at launch",
)
PRIVATE_CONF = Variable(
    "PYSPARK_KERNEL_PRIVATE_CONF",
    "a file path",
    "unset",
    "The path of the kernelspec's 0600 properties file of secret settings (secrets.py). spark-submit reads "
    "that file through --properties-file in PYSPARK_SUBMIT_ARGS; the kernel reads this variable for a Spark "
    "Connect URL's secret parameters (;token=...) and for secret environment variables (install --env).",
    "install, when a setting holds a secret",
)
SERVER_IDLE_TIMEOUT = Variable(
    "PYSPARK_KERNEL_SERVER_IDLE_TIMEOUT",
    "seconds",
    "300",
    "A shared local Spark Connect server (install --remote 'local[*]') stops once no kernel has used it for this long; "
    "the kernel that starts the server passes it on.",
    "install --server-idle-timeout",
)

VARIABLES = (START, WARMUP, PROGRESS, EARLY_JVM, UI_PROXY, UI_ROUTE, BASE_URL, PRIVATE_CONF, SERVER_IDLE_TIMEOUT)


# How much a cell shows (PROGRESS, %spark progress): the job view, its bars, or nothing.
ProgressMode = Literal["full", "bar", "off"]
PROGRESS_MODES: tuple[ProgressMode, ...] = ("full", "bar", "off")


def progress_mode(word: str) -> ProgressMode | None:
    """A progress mode as a user writes it (``on`` is ``full``, as the on/off switch of earlier versions meant); None if unknown."""
    word = word.strip().lower()
    word = "full" if word in ON_WORDS else "off" if word in OFF_WORDS else word
    return next((mode for mode in PROGRESS_MODES if mode == word), None)


def switch(environ: Mapping[str, str], variable: Variable) -> bool | None:
    """An on/off variable as set: True (on), False (off), or None (unset or unreadable: its default holds)."""
    value = environ.get(variable.name, "").strip().lower()
    if value in ON_WORDS:
        return True
    if value in OFF_WORDS:
        return False
    return None
