"""Build a kernelspec from a resolved Spark environment, and install, find, show or remove ours.

Second step of the data path: (SparkEnvironment, SparkOptions) -> kernel.json dict, using Spark's own
variables (SPARK_HOME, PYTHONPATH, PYSPARK_PYTHON, PYSPARK_SUBMIT_ARGS, SPARK_REMOTE) so that what the
kernel does can be read, and changed, in the file. The functions that build the dict are pure; only
``install`` writes, through jupyter_client's KernelSpecManager, which owns where kernelspecs live.
Nothing here imports Spark.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel, _is_valid_kernel_name, _kernel_name_description

from . import __version__
from .environment import SparkEnvironment

DEFAULT_NAME = "PySpark_Python3"
DEFAULT_DISPLAY_NAME = "PySpark_Python3"
START_MODES = ("eager", "lazy", "none")
METADATA_KEY = "pyspark_kernel"
PROVISIONER_NAME = "pyspark-provisioner"

# spark-submit's master URLs; anything else is refused at install, before a kernel fails on it.
MASTER_PATTERN = re.compile(
    r"local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|yarn|spark://[^\s/]+(:\d+)?(,[^\s/]+(:\d+)?)*|"
    r"k8s://(https?://)?[^\s/]+(:\d+)?(/.*)?|mesos://\S+"
)
REMOTE_PATTERN = re.compile(r"sc://[^\s/]+(:\d+)?(/\S*)?")
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL")
# The Hadoop client configuration a YARN driver reads (yarn-site.xml, core-site.xml), in Spark's order.
HADOOP_CONF_VARS = ("HADOOP_CONF_DIR", "YARN_CONF_DIR")
# The io.graphframes jar that graphframes-py 0.12.3 (PyPI) documents for Spark 4 and 3.5; on Maven Central
# as graphframes-spark4_2.13 and graphframes-spark3_2.12 / _2.13.
DEFAULT_GRAPHFRAMES_VERSION = "0.12.1"


class KernelSpecError(ValueError):
    """A kernelspec request that cannot be honoured; the message names the problem and the fix."""


@dataclass(frozen=True)
class SparkOptions:
    """What the user asked for on the command line, before it becomes kernel.json."""

    name: str = DEFAULT_NAME
    display_name: str = DEFAULT_DISPLAY_NAME
    master: str = "local[*]"
    remote: str | None = None  # a Spark Connect URL: SPARK_REMOTE, instead of a local JVM
    conf: dict[str, str] = field(default_factory=dict)
    packages: str | None = None
    jars: str | None = None
    py_files: str | None = None
    driver_memory: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    start: str = "eager"
    provisioner: bool = False
    k8s_image: str | None = None  # spark.kubernetes.container.image: what executor pods run
    k8s_namespace: str | None = None  # spark.kubernetes.namespace
    graphframes: str | None = None  # a GraphFrames version: its Maven coordinate, or the jar in --jars


def parse_conf(pairs: list[str]) -> dict[str, str]:
    """``--conf KEY=VALUE`` strings -> dict, refusing a pair without ``=`` as spark-submit would."""
    conf: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise KernelSpecError(f"--conf {pair!r} is not KEY=VALUE.\nFix: write it as --conf spark.executor.memory=2g")
        conf[key.strip()] = value
    return conf


def check_options(options: SparkOptions) -> None:
    """Refuse what would make a broken kernelspec, before anything is resolved or written."""
    if "/" in options.name or "\\" in options.name or not _is_valid_kernel_name(options.name):
        raise KernelSpecError(f"--name {options.name!r} is not a valid kernel name. {_kernel_name_description}")
    if options.start not in START_MODES:
        raise KernelSpecError(f"--start {options.start!r} is unknown.\nFix: use one of {', '.join(START_MODES)}.")
    if not MASTER_PATTERN.fullmatch(options.master):
        raise KernelSpecError(
            f"--master {options.master!r} is not a Spark master URL.\n"
            "Fix: use local[*], local[N], spark://HOST:PORT, yarn or k8s://https://HOST:PORT."
        )
    if options.remote is not None and not REMOTE_PATTERN.fullmatch(options.remote):
        raise KernelSpecError(f"--remote {options.remote!r} is not a Spark Connect URL.\nFix: use sc://HOST:PORT, e.g. sc://127.0.0.1:15002.")
    if (options.k8s_image or options.k8s_namespace) and not is_k8s_master(options.master):
        raise KernelSpecError(f"--k8s-image and --k8s-namespace apply to Kubernetes only, but --master is {options.master!r}.\nFix: add --master k8s://https://HOST:PORT, or drop them.")
    if options.graphframes is not None and options.remote:
        raise KernelSpecError(
            "--graphframes adds a jar to the kernel's own JVM, but a Spark Connect kernel (--remote) has none.\n"
            "Fix: start the Connect server with GraphFrames' connect plugin (io.graphframes:graphframes-connect-spark4_2.13) and pip install graphframes-py."
        )


def check_cluster(options: SparkOptions, environ: Mapping[str, str]) -> None:
    """Refuse a cluster kernelspec that cannot reach its cluster: what install can know offline."""
    if is_yarn_master(options.master) and not any(options.env.get(name) or environ.get(name) for name in HADOOP_CONF_VARS):
        raise KernelSpecError(
            "--master yarn needs the cluster's Hadoop client configuration, but neither HADOOP_CONF_DIR nor YARN_CONF_DIR is set.\n"
            "Fix: export HADOOP_CONF_DIR=/etc/hadoop/conf (the folder with yarn-site.xml) and run install again, "
            "or pass --env HADOOP_CONF_DIR /etc/hadoop/conf."
        )
    if is_k8s_master(options.master):
        problem = k8s_url_problem(options.master)
        if problem:
            raise KernelSpecError(f"--master {options.master!r}: {problem}.\nFix: use k8s://https://HOST:PORT, the API server of `kubectl cluster-info`.")
        if not cluster_conf(options).get("spark.kubernetes.container.image"):
            raise KernelSpecError(
                "--master k8s://… needs the container image the executor pods run, and none was given.\n"
                "Fix: add --k8s-image REGISTRY/spark-py:TAG (an image with this Spark version and the kernel's Python minor version)."
            )


def is_yarn_master(master: str) -> bool:
    return master == "yarn"


def is_k8s_master(master: str) -> bool:
    return master.startswith("k8s://")


def k8s_url_problem(master: str) -> str | None:
    """What is wrong with a ``k8s://`` master URL, or None; Spark itself reads a bare host as https."""
    api = master.removeprefix("k8s://")
    parts = urlsplit(api if "://" in api else f"https://{api}")
    try:
        parts.port
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
        f"GraphFrames {version} is built for Spark 3.5 and 4.x, not Spark {spark_version}.\n"
        "Fix: for an older Spark pass --packages graphframes:graphframes:0.8.3-spark3.4-s_2.12 (its spark-packages coordinate) instead of --graphframes."
    )


def graphframes_jar(jars: str | None) -> str | None:
    """The GraphFrames jar among ``--jars``: then nothing is fetched from Maven Central."""
    for jar in (jars or "").split(","):
        if Path(jar).name.startswith("graphframes"):
            return jar
    return None


def with_graphframes(spark: SparkEnvironment, options: SparkOptions) -> SparkOptions:
    """``options`` with GraphFrames wired in: the jar from --jars (also on --py-files, as old jars carry
    the Python module), else its Maven coordinate added to --packages."""
    if options.graphframes is None:
        return options
    jar = graphframes_jar(options.jars)
    if jar:
        py_files = [path for path in (options.py_files or "").split(",") if path]
        return replace(options, py_files=",".join(py_files + [jar] if jar not in py_files else py_files))
    coordinate = graphframes_coordinate(spark.spark_version, spark.scala_version, options.graphframes)
    packages = [package for package in (options.packages or "").split(",") if package]
    return replace(options, packages=",".join(packages + [coordinate] if coordinate not in packages else packages))


def is_local_master(master: str) -> bool:
    """True for masters whose driver and executors all run on this machine."""
    return master.startswith("local")


def submit_args(options: SparkOptions) -> str:
    """PYSPARK_SUBMIT_ARGS for spark-submit: pyspark splits it like a shell, so every value is quoted."""
    args = ["--master", options.master]
    if options.driver_memory:
        args += ["--driver-memory", options.driver_memory]
    for flag, value in (("--packages", options.packages), ("--jars", options.jars), ("--py-files", options.py_files)):
        if value:
            args += [flag, value]
    for key, value in cluster_conf(options).items():
        args += ["--conf", f"{key}={value}"]
    return " ".join(shlex.quote(arg) for arg in args + ["pyspark-shell"])


def kernel_env(spark: SparkEnvironment, options: SparkOptions, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment, in Spark's own variables where Spark has one.

    ``environ`` is the installer's environment (default os.environ): JAVA_HOME, and for YARN
    HADOOP_CONF_DIR / YARN_CONF_DIR, are carried from it so the kernel finds what install checked.
    """
    environ = os.environ if environ is None else environ
    options = with_graphframes(spark, options)
    python_path = spark.python_path + [path for path in (options.py_files or "").split(",") if path]
    env = {
        "SPARK_HOME": str(spark.spark_home),
        "PYTHONPATH": os.pathsep.join(python_path),
        "PYSPARK_PYTHON": str(spark.python),
        "PYSPARK_DRIVER_PYTHON": str(spark.python),
        "PYSPARK_KERNEL_START": options.start,
    }
    if options.remote:
        env["SPARK_REMOTE"] = options.remote
    else:
        env["PYSPARK_SUBMIT_ARGS"] = submit_args(options)
        if is_local_master(options.master):
            # Local mode serves nobody else: keep the driver, block manager and UI on loopback.
            env["SPARK_LOCAL_IP"] = "127.0.0.1"
    if spark.java is not None and "JAVA_HOME" not in options.env and environ.get("JAVA_HOME"):
        env["JAVA_HOME"] = environ["JAVA_HOME"]  # the Java that was checked at install
    if is_yarn_master(options.master) and not options.remote:
        env.update({name: environ[name] for name in HADOOP_CONF_VARS if environ.get(name)})
    env.update(options.env)
    return env


def kernel_json(spark: SparkEnvironment, options: SparkOptions, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The whole kernel.json dict: the template from kernelspecs/, filled for this environment."""
    spec = json.loads(resources.files("pyspark_kernel.kernelspecs").joinpath("kernel.json").read_text())
    spec["argv"] = [str(spark.python) if arg == "{python}" else arg for arg in spec["argv"]]
    spec["display_name"] = options.display_name
    spec["env"] = kernel_env(spark, options, environ)
    spec["metadata"][METADATA_KEY] = {
        "version": __version__,
        "spark_home": str(spark.spark_home),
        "spark_version": spark.spark_version,
        "scala_version": spark.scala_version,
        "py4j_zip": str(spark.py4j_zip),
        "master": options.remote or options.master,
        "java": str(spark.java.executable) if spark.java else None,
        "java_version": spark.java.version_text if spark.java else None,
        "python_version": spark.python_version,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if options.graphframes is not None:
        jar = graphframes_jar(options.jars)
        spec["metadata"][METADATA_KEY]["graphframes"] = {
            "version": options.graphframes,
            "jar": jar,
            "package": None if jar else graphframes_coordinate(spark.spark_version, spark.scala_version, options.graphframes),
        }
    if options.provisioner:
        spec["metadata"]["kernel_provisioner"] = {"provisioner_name": PROVISIONER_NAME, "config": {}}
    return spec


def spec_manager(prefix: str | None = None) -> KernelSpecManager:
    """A KernelSpecManager that also searches PREFIX, so list/show/remove see what install --prefix wrote."""
    manager = KernelSpecManager()
    manager.log.setLevel(logging.ERROR)  # its "not in kernel_dirs" warning is about --prefix, which we print
    if prefix:
        manager.kernel_dirs = [str(Path(prefix) / "share" / "jupyter" / "kernels")] + list(manager.kernel_dirs)
    return manager


def destination(name: str, user: bool, prefix: str | None) -> Path:
    """Where KernelSpecManager would install ``name`` (asked of it, so its rules stay the only rules)."""
    return Path(spec_manager()._get_destination_dir(name.lower(), user=user, prefix=prefix))


def free_destination(name: str, user: bool, prefix: str | None, replace: bool) -> Path:
    """The install folder for ``name``, refusing one that is taken unless ``replace``."""
    target = destination(name, user, prefix)
    if target.exists() and not replace:
        raise KernelSpecError(f"A kernelspec named {name!r} already exists in {target}.\nFix: add --replace, or choose another --name.")
    return target


def stage(spec: dict[str, Any], folder: Path) -> None:
    """Write logos and kernel.json into ``folder`` with the modes Jupyter's other kernelspecs have."""
    template = resources.files("pyspark_kernel.kernelspecs")
    for resource in template.iterdir():
        if resource.name.startswith("logo-"):
            with resources.as_file(resource) as logo:
                shutil.copyfile(logo, folder / resource.name)
    (folder / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
    folder.chmod(0o755)
    for written in folder.iterdir():
        written.chmod(0o644)


def install(spec: dict[str, Any], name: str, *, user: bool = False, prefix: str | None = None, replace: bool = False) -> Path:
    """Install ``spec`` as kernel ``name``: staged whole in a temp folder, then copied by jupyter_client.

    Refuses to overwrite an existing kernelspec unless ``replace``; raises KernelSpecError (bad
    request) or OSError (the location cannot be written) and leaves nothing half-written.
    """
    target = free_destination(name, user, prefix, replace)
    with tempfile.TemporaryDirectory(prefix="pyspark-kernelspec-") as staging:
        staged = Path(staging) / name.lower()
        staged.mkdir()
        stage(spec, staged)
        if prefix:
            Path(prefix).mkdir(parents=True, exist_ok=True)
        installed = Path(spec_manager().install_kernel_spec(str(staged), name, user=user, prefix=prefix))
    for folder in (installed, installed.parent):
        folder.chmod(0o755)
    return installed


def is_ours(spec: dict[str, Any]) -> bool:
    """A kernelspec this tool wrote: it carries our metadata block."""
    return METADATA_KEY in spec.get("metadata", {})


def our_specs(prefix: str | None = None) -> dict[str, dict[str, Any]]:
    """name -> {"resource_dir", "spec"} for every kernelspec of ours Jupyter can find."""
    specs = spec_manager(prefix).get_all_specs()
    return {name: found for name, found in sorted(specs.items()) if is_ours(found["spec"])}


def find_spec(name: str, prefix: str | None = None) -> tuple[Path, dict[str, Any]]:
    """(resource_dir, kernel.json dict) of kernel ``name``, or KernelSpecError naming what exists."""
    manager = spec_manager(prefix)
    try:
        spec = manager.get_kernel_spec(name)
    except NoSuchKernel:
        known = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        raise KernelSpecError(f"No kernelspec named {name!r} (installed: {known}).\nFix: run pyspark-kernel list.") from None
    return Path(spec.resource_dir), json.loads((Path(spec.resource_dir) / "kernel.json").read_text())


def remove(name: str, prefix: str | None = None) -> Path:
    """Remove kernel ``name`` if it is one of ours; another kernel's spec is never touched."""
    resource_dir, spec = find_spec(name, prefix)
    if not is_ours(spec):
        raise KernelSpecError(
            f"Kernelspec {name!r} in {resource_dir} was not written by pyspark-kernel; not removing it.\n"
            f"Fix: use jupyter kernelspec remove {name}."
        )
    shutil.rmtree(resource_dir)
    return resource_dir


def submit_settings(submit_args: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """(master, --conf pairs, other flags) read back from PYSPARK_SUBMIT_ARGS, as ``check`` needs them."""
    words = shlex.split(submit_args)
    master, conf, flags = "local[*]", {}, {}
    for flag, value in zip(words, words[1:]):
        if flag == "--master":
            master = value
        elif flag == "--conf" and "=" in value:
            key, _, setting = value.partition("=")
            conf[key] = setting
        elif flag.startswith("--"):
            flags[flag] = value
    return master, conf, flags


def is_secret(name: str) -> bool:
    """Names like FOO_TOKEN, spark.ssl.keyPassword or AWS_SECRET_ACCESS_KEY hold secrets."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def mask(value: str) -> str:
    """Enough of a secret to recognise it, never enough to use it."""
    return value[:2] + "****" if len(value) > 8 else "****"


def redacted(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of kernel.json fit to print: secret-named env values and --conf values masked."""
    copy = json.loads(json.dumps(spec))
    env = copy.get("env", {})
    for name, value in env.items():
        if is_secret(name):
            env[name] = mask(value)
    if "PYSPARK_SUBMIT_ARGS" in env:
        words = shlex.split(env["PYSPARK_SUBMIT_ARGS"])
        for index, word in enumerate(words):
            key, sep, value = word.partition("=")
            if index and words[index - 1] == "--conf" and sep and is_secret(key):
                words[index] = f"{key}={mask(value)}"
        env["PYSPARK_SUBMIT_ARGS"] = " ".join(shlex.quote(word) for word in words)
    return copy


def default_python() -> str:
    """The Python running this command: the one that has this package and its pyspark."""
    return sys.executable
