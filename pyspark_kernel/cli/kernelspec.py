"""Build a kernelspec from a resolved Spark environment, and install, find, show or remove ours.

Second step of the data path: (SparkEnvironment, SparkOptions) -> kernel.json dict, using Spark's own
variables (SPARK_HOME, PYTHONPATH, PYSPARK_PYTHON, PYSPARK_SUBMIT_ARGS, SPARK_REMOTE) so that what the
kernel does can be read, and changed, in the file. The functions that build the dict are pure; only
``install`` writes, through jupyter_client's KernelSpecManager, which owns where kernelspecs live.
Nothing here imports Spark.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from pyspark_kernel import __version__, secrets, submitargs
from pyspark_kernel.cli.options import (
    HADOOP_CONF_VARS,
    SparkOptions,
    cluster_conf,
    graphframes_setup,
    with_graphframes,
)
from pyspark_kernel.environment import SparkEnvironment
from pyspark_kernel.errors import KernelSpecError
from pyspark_kernel.localserver import DEFAULT_IDLE_TIMEOUT, is_local_remote
from pyspark_kernel.masters import is_local_master, is_yarn_master
from pyspark_kernel.variables import SERVER_IDLE_TIMEOUT

METADATA_KEY = "pyspark_kernel"
PROVISIONER_NAME = "pyspark-provisioner"
# The one rule for secrets lives in secrets.py; these names stay for callers of this module.
is_secret, mask = secrets.is_secret, secrets.mask


def submit_args(options: SparkOptions, private_file: Path | None = None, spark_version: str = "4") -> str:
    """PYSPARK_SUBMIT_ARGS for spark-submit: the master, the driver's memory, jars and files, the plain
    --conf; secret --conf values are read by spark-submit from ``private_file``, never put here."""
    flags = {"--driver-memory": options.driver_memory, "--packages": options.packages, "--jars": options.jars, "--py-files": options.py_files}
    plain, _ = secrets.split(cluster_conf(options), options.secret_keys)
    extra = secrets.submit_flags(private_file, spark_version) if private_file else []
    return submitargs.build(options.master, flags, plain, extra)


def private_values(options: SparkOptions) -> dict[str, str]:
    """What goes into the kernelspec's secret file instead of kernel.json: secret --conf values (none
    for a Spark Connect kernel, which takes no --conf), the secret parameters of a --remote URL and
    secret-named --env variables (the kernel process sets them itself, __main__.py)."""
    env = {secrets.ENV_PREFIX + name: value for name, value in options.env.items() if secrets.is_secret(name)}
    if options.remote and not is_local_remote(options.remote):
        _, hidden = secrets.split_remote(options.remote)
        return {**{secrets.REMOTE_PREFIX + name: value for name, value in hidden.items()}, **env}
    return {**secrets.split(cluster_conf(options), options.secret_keys)[1], **env}


def kernel_env(spark: SparkEnvironment, options: SparkOptions, environ: Mapping[str, str] | None = None, private_file: Path | None = None) -> dict[str, str]:
    """The kernel's environment, in Spark's own variables where Spark has one.

    ``environ`` is the installer's environment (default os.environ): JAVA_HOME, and for YARN
    HADOOP_CONF_DIR / YARN_CONF_DIR, are carried from it so the kernel finds what install checked.
    ``private_file``: where install keeps this kernelspec's secret values (secrets.py); only its path
    is written here.
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
    if is_local_remote(options.remote):
        # One shared local Spark Connect server per user (pyspark's opt-in reuse, localserver.py); its start
        # settings in spark-submit's words, as for a local JVM: master, driver memory, --conf.
        env.update({"SPARK_REMOTE": str(options.remote), "SPARK_LOCAL_CONNECT_REUSE": "1", "SPARK_LOCAL_IP": "127.0.0.1"})
        env["PYSPARK_SUBMIT_ARGS"] = submit_args(dataclasses.replace(options, master=str(options.remote)), private_file, spark.spark_version)
        env[SERVER_IDLE_TIMEOUT.name] = f"{options.server_idle_timeout or DEFAULT_IDLE_TIMEOUT:g}"
    elif options.remote:
        env["SPARK_REMOTE"] = secrets.split_remote(options.remote)[0]
    else:
        env["PYSPARK_SUBMIT_ARGS"] = submit_args(options, private_file, spark.spark_version)
        if is_local_master(options.master):
            # Local mode serves nobody else: keep the driver, block manager and UI on loopback.
            env["SPARK_LOCAL_IP"] = "127.0.0.1"
    if private_file:
        env[secrets.PRIVATE_FILE_VAR] = str(private_file)
    if spark.java is not None and "JAVA_HOME" not in options.env and environ.get("JAVA_HOME"):
        env["JAVA_HOME"] = environ["JAVA_HOME"]  # the Java that was checked at install
    if is_yarn_master(options.master) and not options.remote:
        env.update({name: environ[name] for name in HADOOP_CONF_VARS if environ.get(name)})
    env.update({name: value for name, value in options.env.items() if not secrets.is_secret(name)})
    return env


def python_has_frozen_modules(python_version: str) -> bool:
    """CPython 3.11 and later freeze stdlib modules at start; ``python_version`` is ``MAJOR.MINOR``."""
    major, minor = (int(part) for part in python_version.split(".")[:2])
    return (major, minor) >= (3, 11)


def kernel_json(spark: SparkEnvironment, options: SparkOptions, environ: Mapping[str, str] | None = None, private_file: Path | None = None) -> dict[str, Any]:
    """The whole kernel.json dict: the template from kernelspecs/, filled for this environment; secret
    values stay in ``private_file`` (see kernel_env)."""
    spec: dict[str, Any] = json.loads(resources.files("pyspark_kernel.kernelspecs").joinpath("kernel.json").read_text())
    spec["argv"] = [str(spark.python) if arg == "{python}" else arg for arg in spec["argv"]]
    if python_has_frozen_modules(spark.python_version):
        # As ipykernel's kernelspec does: with frozen stdlib modules the debugger (metadata.debugger)
        # cannot step into them and debugpy warns in every session.
        spec["argv"].insert(1, "-Xfrozen_modules=off")
    spec["display_name"] = options.display_name
    spec["env"] = kernel_env(spark, options, environ, private_file)
    spec["metadata"][METADATA_KEY] = {
        "version": __version__,
        "spark_home": str(spark.spark_home),
        "spark_version": spark.spark_version,
        "scala_version": spark.scala_version,
        "py4j_zip": str(spark.py4j_zip),
        "master": secrets.split_remote(options.remote)[0] if options.remote else options.master,
        "java": str(spark.java.executable) if spark.java else None,
        "java_version": spark.java.version_text if spark.java else None,
        "python_version": spark.python_version,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if private_file:
        spec["metadata"][METADATA_KEY]["private_conf"] = sorted(private_values(options))  # the names only
    if options.graphframes is not None:
        spec["metadata"][METADATA_KEY]["graphframes"] = graphframes_setup(spark, options)
    if options.provisioner or options.pool:
        spec["metadata"]["kernel_provisioner"] = {"provisioner_name": PROVISIONER_NAME, "config": provisioner_config(options)}
    return spec


def provisioner_config(options: SparkOptions) -> dict[str, int | float]:
    """What jupyter_client passes to the provisioner as its traits: the warm pool's size and idle timeout."""
    if not options.pool:
        return {}
    config: dict[str, int | float] = {"pool_size": options.pool}
    if options.pool_idle_timeout is not None:
        config["pool_idle_timeout"] = options.pool_idle_timeout
    return config


def spec_manager(prefix: str | None = None) -> KernelSpecManager:
    """A KernelSpecManager that also searches PREFIX, so list/show/remove see what install --prefix wrote."""
    manager = KernelSpecManager()
    manager.log.setLevel(logging.ERROR)  # its "not in kernel_dirs" warning is about --prefix, which we print
    if prefix:
        manager.kernel_dirs = [str(Path(prefix) / "share" / "jupyter" / "kernels")] + list(manager.kernel_dirs)
    return manager


def destination(name: str, user: bool, prefix: str | None) -> Path:
    """Where ``install_kernel_spec`` puts ``name``, by its documented rule: PREFIX/share/jupyter/kernels
    for a prefix, else the manager's ``user_kernel_dir`` (public; we never install system-wide)."""
    if prefix:
        return Path(prefix) / "share" / "jupyter" / "kernels" / name.lower()
    if not user:
        raise KernelSpecError("An install needs --user, --sys-prefix or --prefix DIR.", "add one of them.")
    return Path(spec_manager().user_kernel_dir) / name.lower()


def free_destination(name: str, user: bool, prefix: str | None, replace: bool) -> Path:
    """The install folder for ``name``, refusing one that is taken unless ``replace``."""
    target = destination(name, user, prefix)
    if target.exists() and not replace:
        raise KernelSpecError(f"A kernelspec named {name!r} already exists in {target}.", "add --replace, or choose another --name.")
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


def install(
    spec: dict[str, Any], name: str, *, user: bool = False, prefix: str | None = None, replace: bool = False, private: Mapping[str, str] | None = None
) -> Path:
    """Install ``spec`` as kernel ``name``: staged whole in a temp folder, then copied by jupyter_client;
    ``private`` (secret values) written first to the 0600 file kernel.json names (secrets.py).

    Refuses to overwrite an existing kernelspec unless ``replace``; raises KernelSpecError (bad
    request) or OSError (the location cannot be written) and leaves nothing half-written: when the
    kernelspec cannot be written, the secret file is put back as it was (or removed).
    """
    target = free_destination(name, user, prefix, replace)
    private_file = secrets.store_path(name, target)
    previous = private_file.read_text(encoding="utf-8") if private_file.is_file() else None
    if private:
        secrets.check_storable(private)
        secrets.write_private(private_file, private)
    try:
        installed = copy_in(spec, name, user, prefix)
    except BaseException:
        restore(private_file, previous, bool(private))
        raise
    if not private:  # a --replace without secrets leaves none of the old ones behind
        private_file.unlink(missing_ok=True)
    return installed


def copy_in(spec: dict[str, Any], name: str, user: bool, prefix: str | None) -> Path:
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


def restore(private_file: Path, previous: str | None, written: bool) -> None:
    """Undo this install's secret file: the old kernelspec keeps the secrets it had."""
    if not written:
        return
    if previous is None:
        private_file.unlink(missing_ok=True)
    else:
        secrets.write_private_text(private_file, previous)


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
        raise KernelSpecError(f"No kernelspec named {name!r} (installed: {known}).", "run pyspark-kernel list.") from None
    return Path(spec.resource_dir), json.loads((Path(spec.resource_dir) / "kernel.json").read_text())


def remove(name: str, prefix: str | None = None) -> Path:
    """Remove kernel ``name`` if it is one of ours; another kernel's spec is never touched."""
    resource_dir, spec = find_spec(name, prefix)
    if not is_ours(spec):
        raise KernelSpecError(
            f"Kernelspec {name!r} in {resource_dir} was not written by pyspark-kernel; not removing it.", f"use jupyter kernelspec remove {name}."
        )
    removed = Path(spec_manager(prefix).remove_kernel_spec(name))
    private_file = spec.get("env", {}).get(secrets.PRIVATE_FILE_VAR)
    if private_file and secrets.is_ours(Path(private_file)):  # never a file kernel.json merely names
        Path(private_file).unlink(missing_ok=True)
    return removed


def redacted(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of kernel.json fit to print: secret-named env values, --conf values and Connect URL
    parameters masked (kernelspecs written before secret files held them inline)."""
    copy: dict[str, Any] = json.loads(json.dumps(spec))
    env = copy.get("env", {})
    for name, value in env.items():
        if secrets.is_secret(name) and name != secrets.PRIVATE_FILE_VAR:
            env[name] = secrets.mask(value)
    if "PYSPARK_SUBMIT_ARGS" in env:
        env["PYSPARK_SUBMIT_ARGS"] = submitargs.redact(env["PYSPARK_SUBMIT_ARGS"], secrets.is_secret, secrets.mask)
    if "SPARK_REMOTE" in env:
        env["SPARK_REMOTE"] = secrets.redact_remote(env["SPARK_REMOTE"])
    meta = copy.get("metadata", {}).get(METADATA_KEY, {})
    if isinstance(meta.get("master"), str):
        meta["master"] = secrets.redact_remote(meta["master"])
    return copy
