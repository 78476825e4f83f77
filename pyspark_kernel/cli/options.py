"""What the user asked for: the options of ``pyspark-kernel install``, checked, with the settings a
cluster master or GraphFrames implies derived from them.

First step of the data path after argument parsing: main.py builds a SparkOptions, this module refuses
what would make a broken kernelspec (before anything is resolved or written) and works out the
client-mode settings of YARN and Kubernetes and GraphFrames' coordinate; kernelspec.py turns the
result into kernel.json. Pure functions; nothing here touches the filesystem but a path's name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from pyspark_kernel.environment import SparkEnvironment
from pyspark_kernel.errors import KernelSpecError
from pyspark_kernel.localserver import is_local_remote
from pyspark_kernel.masters import DEFAULT_MASTER, is_k8s_master, is_yarn_master
from pyspark_kernel.variables import PROGRESS, PROGRESS_MODES, progress_mode

DEFAULT_NAME = "PySpark_Python3"
DEFAULT_DISPLAY_NAME = "PySpark_Python3"
START_MODES = ("eager", "lazy", "none")
MAX_POOL = 16

# spark-submit's master URLs; anything else is refused at install, before a kernel fails on it.
MASTER_PATTERN = re.compile(
    r"local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|yarn|spark://[^\s/]+(:\d+)?(,[^\s/]+(:\d+)?)*|"
    r"k8s://(https?://)?[^\s/]+(:\d+)?(/.*)?|mesos://\S+"
)
REMOTE_PATTERN = re.compile(r"sc://[^\s/]+(:\d+)?(/\S*)?")
# The Hadoop client configuration a YARN driver reads (yarn-site.xml, core-site.xml), in Spark's order.
HADOOP_CONF_VARS = ("HADOOP_CONF_DIR", "YARN_CONF_DIR")
# The io.graphframes jar that graphframes-py 0.12.3 (PyPI) documents for Spark 4 and 3.5; on Maven Central
# as graphframes-spark4_2.13 and graphframes-spark3_2.12 / _2.13.
DEFAULT_GRAPHFRAMES_VERSION = "0.12.1"
# Jupyter's rule for kernel names, as its docs state it (jupyter_client keeps its own check private).
KERNEL_NAME = re.compile(r"[a-z0-9._-]+", re.IGNORECASE)
KERNEL_NAME_RULE = "use only ASCII letters, digits and the separators - . _ (Jupyter's rule for kernel names)."


@dataclass(frozen=True)
class SparkOptions:
    """What the user asked for on the command line, before it becomes kernel.json."""

    name: str = DEFAULT_NAME
    display_name: str = DEFAULT_DISPLAY_NAME
    master: str = DEFAULT_MASTER
    remote: str | None = None  # a Spark Connect URL: SPARK_REMOTE, instead of a local JVM
    conf: dict[str, str] = field(default_factory=dict)
    packages: str | None = None
    jars: str | None = None
    py_files: str | None = None
    driver_memory: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    start: str = "eager"
    provisioner: bool = False
    pool: int = 0  # warm kernels the provisioner keeps ready (implies the provisioner)
    pool_idle_timeout: float | None = None  # seconds an unused pooled kernel is kept
    k8s_image: str | None = None  # spark.kubernetes.container.image: what executor pods run
    k8s_namespace: str | None = None  # spark.kubernetes.namespace
    graphframes: str | None = None  # a GraphFrames version: its Maven coordinate, or the jar in --jars
    secret_keys: tuple[str, ...] = ()  # --secret-conf: kept out of kernel.json whatever their names
    server_idle_timeout: float | None = None  # --remote local[*]: seconds the shared server outlives its last kernel


def check_options(options: SparkOptions) -> None:
    """Refuse what would make a broken kernelspec, before anything is resolved or written."""
    if not KERNEL_NAME.fullmatch(options.name):
        raise KernelSpecError(f"--name {options.name!r} is not a valid kernel name.", KERNEL_NAME_RULE)
    if options.start not in START_MODES:
        raise KernelSpecError(f"--start {options.start!r} is unknown.", f"use one of {', '.join(START_MODES)}.")
    progress = options.env.get(PROGRESS.name)
    if progress is not None and progress_mode(progress) is None:
        raise KernelSpecError(f"--env {PROGRESS.name} {progress!r} is unknown.", f"use one of {', '.join(PROGRESS_MODES)} (on means full).")
    if not MASTER_PATTERN.fullmatch(options.master):
        raise KernelSpecError(
            f"--master {options.master!r} is not a Spark master URL.", "use local[*], local[N], spark://HOST:PORT, yarn or k8s://https://HOST:PORT."
        )
    if options.remote is not None and not (REMOTE_PATTERN.fullmatch(options.remote) or is_local_remote(options.remote)):
        raise KernelSpecError(
            f"--remote {options.remote!r} is neither a Spark Connect URL nor a local server.",
            "use sc://HOST:PORT (e.g. sc://127.0.0.1:15002), or local[*] / local[N] for one shared local server per user.",
        )
    if options.server_idle_timeout is not None and not is_local_remote(options.remote):
        raise KernelSpecError("--server-idle-timeout applies to a shared local server only.", "add --remote 'local[*]', or drop --server-idle-timeout.")
    if options.server_idle_timeout is not None and options.server_idle_timeout <= 0:
        raise KernelSpecError(
            f"--server-idle-timeout {options.server_idle_timeout:g} is not a positive number of seconds.", "use 300 (five minutes), for example."
        )
    if is_local_remote(options.remote) and options.master != DEFAULT_MASTER:
        raise KernelSpecError(
            f"--master {options.master!r} and --remote {options.remote!r} both say where Spark runs.",
            f"give one: --remote {options.remote!r} alone (its server runs {options.remote}), or --master without --remote.",
        )
    if (options.k8s_image or options.k8s_namespace) and not is_k8s_master(options.master):
        raise KernelSpecError(
            f"--k8s-image and --k8s-namespace apply to Kubernetes only, but --master is {options.master!r}.",
            "add --master k8s://https://HOST:PORT, or drop them.",
        )
    if options.pool < 0 or options.pool > MAX_POOL:
        raise KernelSpecError(
            f"--pool {options.pool} is out of range.", f"use 1 to {MAX_POOL} (each pooled kernel holds a JVM of about 500 MB), or leave --pool out."
        )
    if options.pool_idle_timeout is not None and (options.pool_idle_timeout <= 0 or not options.pool):
        problem = (
            "--pool-idle-timeout needs --pool N"
            if not options.pool
            else f"--pool-idle-timeout {options.pool_idle_timeout:g} is not a positive number of seconds"
        )
        raise KernelSpecError(f"{problem}.", "add --pool 2 --pool-idle-timeout 1800, for example.")
    if options.graphframes is not None and options.remote:
        raise KernelSpecError(
            "--graphframes adds a jar to the kernel's own JVM, but a Spark Connect kernel (--remote) has none.",
            "start the Connect server with GraphFrames' connect plugin (io.graphframes:graphframes-connect-spark4_2.13) and pip install graphframes-py.",
        )


def check_cluster(options: SparkOptions, environ: Mapping[str, str]) -> None:
    """Refuse a cluster kernelspec that cannot reach its cluster: what install can know offline."""
    if is_yarn_master(options.master) and not any(options.env.get(name) or environ.get(name) for name in HADOOP_CONF_VARS):
        raise KernelSpecError(
            "--master yarn needs the cluster's Hadoop client configuration, but neither HADOOP_CONF_DIR nor YARN_CONF_DIR is set.",
            "export HADOOP_CONF_DIR=/etc/hadoop/conf (the folder with yarn-site.xml) and run install again, or pass --env HADOOP_CONF_DIR /etc/hadoop/conf.",
        )
    if is_k8s_master(options.master):
        problem = k8s_url_problem(options.master)
        if problem:
            raise KernelSpecError(f"--master {options.master!r}: {problem}.", "use k8s://https://HOST:PORT, the API server of `kubectl cluster-info`.")
        if not cluster_conf(options).get("spark.kubernetes.container.image"):
            raise KernelSpecError(
                "--master k8s://… needs the container image the executor pods run, and none was given.",
                "add --k8s-image REGISTRY/spark-py:TAG (an image with this Spark version and the kernel's Python minor version).",
            )


def k8s_url_problem(master: str) -> str | None:
    """What is wrong with a ``k8s://`` master URL, or None; Spark itself reads a bare host as https."""
    api = master.removeprefix("k8s://")
    parts = urlsplit(api if "://" in api else f"https://{api}")
    try:
        _ = parts.port  # raises for a port that is not a number
    except ValueError:
        return "the API server port is not a number"
    if parts.scheme not in ("https", "http"):
        return f"the API server scheme {parts.scheme!r} is neither https nor http"
    if not parts.hostname:
        return "the API server host is missing"
    return None


def cluster_conf(options: SparkOptions) -> dict[str, str]:
    """The --conf a cluster master needs in client mode, with the user's own --conf winning over each."""
    conf: dict[str, str] = {}
    if is_yarn_master(options.master):
        # The kernel is the driver: if YARN re-ran the application master after a failure, it would
        # ask for executors on behalf of a driver that is gone.
        conf["spark.yarn.maxAppAttempts"] = "1"
    if is_k8s_master(options.master):
        if options.k8s_image:
            conf["spark.kubernetes.container.image"] = options.k8s_image
        if options.k8s_namespace:
            conf["spark.kubernetes.namespace"] = options.k8s_namespace
    return {**conf, **options.conf}


def graphframes_coordinate(spark_version: str, scala_version: str, version: str) -> str:
    """The io.graphframes Maven coordinate built for this Spark line and Scala version."""
    major, minor = (int(part) for part in spark_version.split(".")[:2])
    if major == 4 or (major, minor) >= (3, 5):
        return f"io.graphframes:graphframes-spark{major}_{scala_version}:{version}"
    raise KernelSpecError(
        f"GraphFrames {version} is built for Spark 3.5 and 4.x, not Spark {spark_version}.",
        "for an older Spark pass --packages graphframes:graphframes:0.8.3-spark3.4-s_2.12 (its spark-packages coordinate) instead of --graphframes.",
    )


def graphframes_jar(jars: str | None) -> str | None:
    """The GraphFrames jar among ``--jars``: then nothing is fetched from Maven Central."""
    for jar in (jars or "").split(","):
        if Path(jar).name.startswith("graphframes"):
            return jar
    return None


def graphframes_setup(spark: SparkEnvironment, options: SparkOptions) -> dict[str, str | None]:
    """How GraphFrames reaches the JVM: the jar given with --jars, else the package of its coordinate
    (fetched when Spark starts). kernel.json records it; ``check`` reads it back."""
    jar = graphframes_jar(options.jars)
    package = None if jar else graphframes_coordinate(spark.spark_version, spark.scala_version, options.graphframes or DEFAULT_GRAPHFRAMES_VERSION)
    return {"version": options.graphframes, "jar": jar, "package": package}


def with_graphframes(spark: SparkEnvironment, options: SparkOptions) -> SparkOptions:
    """``options`` with GraphFrames wired in: the jar from --jars (also on --py-files, as old jars carry
    the Python module), else its Maven coordinate added to --packages."""
    if options.graphframes is None:
        return options
    setup = graphframes_setup(spark, options)
    jar, package = setup["jar"], setup["package"]
    if jar:
        py_files = [path for path in (options.py_files or "").split(",") if path]
        return replace(options, py_files=",".join(py_files + [jar] if jar not in py_files else py_files))
    packages = [name for name in (options.packages or "").split(",") if name]
    added = [package] if package and package not in packages else []  # no jar: a coordinate, always
    return replace(options, packages=",".join(packages + added))


def with_driver_java_options(options: SparkOptions, java_options: str) -> SparkOptions:
    """``options`` with ``java_options`` appended to the user's own spark.driver.extraJavaOptions."""
    mine = options.conf.get("spark.driver.extraJavaOptions", "")
    merged = f"{mine} {java_options}".strip()
    return replace(options, conf={**options.conf, "spark.driver.extraJavaOptions": merged})
