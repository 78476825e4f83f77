"""``pyspark-kernel check``: does this kernelspec's Spark, Java and Python fit together?

Each check reuses environment.py and reports OK, WARN, FAIL or SKIP with the fix for a FAIL. It runs the
kernel's own Python with the kernel's own environment, so it sees what the kernel will see.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pyspark_kernel import (
    environment,
    isolation,
    localdirs,
    masters,
    secrets,
    submitargs,
)
from pyspark_kernel.cli import cds, channels, kernelspec, options
from pyspark_kernel.errors import Problem, SparkEnvironmentError
from pyspark_kernel.pythons import PythonFacts, probe_python, python_imports

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"
# What pyspark's Spark Connect client imports besides pyspark (the ``connect`` extra and core deps).
CONNECT_CLIENT_MODULES = ("grpc", "grpc_status", "google.rpc", "zstandard", "pyarrow", "pandas")


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: str
    detail: str
    fix: str = ""

    @classmethod
    def failed(cls, check: str, error: Problem) -> CheckResult:
        """A FAIL row with the error's own problem and fix, the words install and the kernel use."""
        return cls(check, FAIL, error.problem, error.fix)


def target(name: str | None, prefix: str | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(kernel Python, kernel environment, metadata) of kernelspec ``name``, or of what install would write."""
    if name:
        _, spec = kernelspec.find_spec(name, prefix)
        return spec["argv"][0], {**os.environ, **spec.get("env", {})}, spec.get("metadata", {})
    spark = environment.resolve(need_java=False)
    env = kernelspec.kernel_env(spark, options.SparkOptions())
    return str(spark.python), {**os.environ, **env}, {}


def check_spark_home(env: dict[str, str]) -> tuple[CheckResult, str | None]:
    try:
        home = environment.find_spark_home(None, env)
        version, scala = environment.spark_version_of(home)
        environment.find_py4j_zip(home)
    except SparkEnvironmentError as error:
        return CheckResult.failed("SPARK_HOME", error), None
    return CheckResult("SPARK_HOME", OK, f"Spark {version} (Scala {scala}) at {home}"), version


def check_python_path(env: dict[str, str]) -> CheckResult:
    entries = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    missing = [entry for entry in entries if not Path(entry).exists()]
    if missing:
        return CheckResult(
            "PYTHONPATH", FAIL, f"missing: {', '.join(missing)}", "reinstall the kernelspec (pyspark-kernel install … --replace) or use --provisioner"
        )
    if not any(Path(entry).name.startswith("py4j-") for entry in entries):
        return CheckResult("PYTHONPATH", WARN, "no py4j zip on PYTHONPATH; the kernel relies on its Python's py4j")
    return CheckResult("PYTHONPATH", OK, os.pathsep.join(entries))


def check_java(env: dict[str, str], spark_version: str | None) -> CheckResult:
    if env.get("SPARK_REMOTE"):
        return CheckResult("Java", SKIP, "Spark Connect kernel: no local JVM")
    try:
        java = environment.find_java(env)
        if spark_version:
            environment.require_java(spark_version, java)
    except SparkEnvironmentError as error:
        return CheckResult.failed("Java", error)
    return CheckResult("Java", OK, f"Java {java.version_text} at {java.executable}")


def check_python(python: str, env: dict[str, str], spark_version: str | None) -> list[CheckResult]:
    """pyspark as the kernel's Python imports it, and the workers' Python (PYSPARK_PYTHON) of the same
    minor version: each Python is asked once."""
    try:
        kernel = probe_python(python, env)
    except SparkEnvironmentError as error:
        return [CheckResult.failed("pyspark", error)]
    worker_python = env.get("PYSPARK_PYTHON", python)
    try:
        worker = kernel if worker_python == python else probe_python(worker_python, env)
    except SparkEnvironmentError as error:
        worker_result = CheckResult(
            "Python", FAIL, f"PYSPARK_PYTHON {worker_python} does not run: {error.problem}", "set PYSPARK_PYTHON to a working Python of the driver's version"
        )
    else:
        worker_result = python_versions_result(kernel, worker)
    return [pyspark_result(kernel, spark_version), worker_result]


def pyspark_result(kernel: PythonFacts, spark_version: str | None) -> CheckResult:
    version, location = kernel.pyspark_version, kernel.pyspark_home
    if version is None:
        return CheckResult(
            "pyspark", FAIL, f"not importable by {kernel.executable}: {kernel.pyspark_error}", "pip install pyspark, or fix PYTHONPATH in the kernelspec"
        )
    if spark_version and environment.spark_release(version) != environment.spark_release(spark_version):
        return CheckResult(
            "pyspark",
            FAIL,
            f"imports pyspark {version} from {location}, but SPARK_HOME's jars are Spark {spark_version}",
            "reinstall the kernelspec with pyspark-kernel install --spark-home SPARK_HOME --replace",
        )
    if spark_version and environment.is_vendor_build(spark_version):
        return CheckResult(
            "pyspark",
            WARN,
            f"pyspark {version} from {location}, with a vendor build of its release in SPARK_HOME's jars ({spark_version})",
            "nothing, usually; if Spark calls fail, use that vendor's pyspark",
        )
    return CheckResult("pyspark", OK, f"pyspark {version} from {location}")


def python_versions_result(driver: PythonFacts, worker: PythonFacts) -> CheckResult:
    if driver.version != worker.version:
        return CheckResult(
            "Python",
            FAIL,
            f"driver Python {driver.version} but PYSPARK_PYTHON {worker.executable} is {worker.version}",
            "use the same Python minor version for both (Spark refuses a mismatch)",
        )
    return CheckResult("Python", OK, f"driver and workers on Python {driver.version}")


def check_provisioner(metadata: dict[str, Any]) -> CheckResult | None:
    wanted = metadata.get("kernel_provisioner", {}).get("provisioner_name")
    if not wanted:
        return None
    names = {point.name for point in entry_points(group="jupyter_client.kernel_provisioners")}
    if wanted in names:
        config = metadata.get("kernel_provisioner", {}).get("config", {})
        pool = (
            f"; warm pool of {config['pool_size']} (idle timeout {config.get('pool_idle_timeout', 1800):g} s), each idle kernel holds a JVM"
            if config.get("pool_size")
            else ""
        )
        return CheckResult("provisioner", OK, f"{wanted} is available to this Python ({sys.executable}){pool}")
    return CheckResult(
        "provisioner", FAIL, f"{wanted} is not installed in {sys.executable}", "pip install pyspark-jupyter-kernel into the Jupyter server's Python"
    )


def check_yarn(env: dict[str, str]) -> CheckResult:
    """Offline: the Hadoop client configuration the driver needs to find the ResourceManager."""
    dirs = [(name, env[name]) for name in options.HADOOP_CONF_VARS if env.get(name)]
    if not dirs:
        return CheckResult(
            "YARN",
            FAIL,
            "neither HADOOP_CONF_DIR nor YARN_CONF_DIR is set",
            "reinstall with HADOOP_CONF_DIR exported, or with --env HADOOP_CONF_DIR /etc/hadoop/conf",
        )
    missing = [f"{name}={path}" for name, path in dirs if not Path(path).is_dir()]
    if missing:
        return CheckResult(
            "YARN", FAIL, f"{', '.join(missing)} is not a folder", "point it at the cluster's Hadoop client configuration (pyspark-kernel install … --replace)"
        )
    with_site = [path for _, path in dirs if (Path(path) / "yarn-site.xml").is_file()]
    if not with_site:
        where = ", ".join(path for _, path in dirs)
        return CheckResult("YARN", FAIL, f"no yarn-site.xml in {where}", "copy the cluster's client configuration (yarn-site.xml, core-site.xml) there")
    return CheckResult("YARN", OK, f"yarn-site.xml in {with_site[0]}")


def check_k8s(master: str, conf: dict[str, str]) -> list[CheckResult]:
    """Offline: a well-formed API server URL and an executor image; the cluster itself is not asked."""
    problem = options.k8s_url_problem(master)
    api = (
        CheckResult("Kubernetes API", FAIL, f"{master}: {problem}", "use --master k8s://https://HOST:PORT")
        if problem
        else CheckResult("Kubernetes API", OK, master)
    )
    image = conf.get("spark.kubernetes.container.image")
    namespace = conf.get("spark.kubernetes.namespace", "default")
    if not image:
        return [
            api,
            CheckResult(
                "k8s image", FAIL, "no spark.kubernetes.container.image: executor pods cannot start", "reinstall with --k8s-image REGISTRY/spark-py:TAG"
            ),
        ]
    return [api, CheckResult("k8s image", OK, f"{image} in namespace {namespace}")]


def check_connect(python: str, env: dict[str, str]) -> list[CheckResult]:
    """The Connect client's modules in the kernel's Python, and a server answering at SPARK_REMOTE."""
    remote = env["SPARK_REMOTE"]
    missing = python_imports(python, env, CONNECT_CLIENT_MODULES)
    client = (
        CheckResult("Connect client", FAIL, f"{python}: {missing}", "pip install 'pyspark-jupyter-kernel[connect]' into the kernel's Python")
        if missing
        else CheckResult("Connect client", OK, "grpcio, grpcio-status, protos, zstandard, pyarrow, pandas importable")
    )
    from pyspark_kernel.remote import (
        check_reachable,  # the kernel's own probe: the same words
    )

    try:
        check_reachable(remote, timeout=3)
    except Problem as error:
        server = CheckResult.failed("Connect server", error)
    else:
        server = CheckResult("Connect server", OK, f"{secrets.redact_remote(remote)} accepts connections")
    return [client, server]


def check_graphframes(python: str, env: dict[str, str], wanted: dict[str, Any]) -> list[CheckResult]:
    """The GraphFrames jar (or its coordinate) and the Python module, as the kernel will see them."""
    jar = wanted.get("jar")
    if jar and not Path(jar).is_file():
        jvm = CheckResult("GraphFrames jar", FAIL, f"{jar} does not exist", "reinstall with --graphframes --jars /path/to/graphframes-spark4_2.13-<ver>.jar")
    elif jar:
        jvm = CheckResult("GraphFrames jar", OK, jar)
    else:
        jvm = CheckResult(
            "GraphFrames jar",
            WARN,
            f"{wanted.get('package')} is fetched from Maven Central when Spark starts",
            "offline: download it and reinstall with --graphframes --jars PATH",
        )
    problem = python_imports(python, env, ("graphframes",))
    module = (
        CheckResult(
            "GraphFrames py", FAIL, f"{python}: {problem}", "pip install 'pyspark-jupyter-kernel[graphframes]' (graphframes-py) into the kernel's Python"
        )
        if problem
        else CheckResult("GraphFrames py", OK, "graphframes importable")
    )
    return [jvm, module]


def check_mode(python: str, env: dict[str, str], metadata: dict[str, Any]) -> list[CheckResult]:
    """The checks of this kernel's kind of master: Connect, YARN, Kubernetes, and GraphFrames if asked."""
    if env.get("SPARK_REMOTE"):
        return check_connect(python, env)
    submitted = submitargs.parse(env.get("PYSPARK_SUBMIT_ARGS", submitargs.CLOSING))
    results = [check_yarn(env)] if masters.is_yarn_master(submitted.master) else []
    results += check_k8s(submitted.master, submitted.conf) if masters.is_k8s_master(submitted.master) else []
    wanted = metadata.get(kernelspec.METADATA_KEY, {}).get("graphframes")
    return results + (check_graphframes(python, env, wanted) if wanted else [])


def install_notes(spec: dict[str, Any]) -> list[str]:
    """What install should tell about the kernelspec it just wrote (it is written either way)."""
    wanted = spec["metadata"].get(kernelspec.METADATA_KEY, {}).get("graphframes")
    if wanted and python_imports(spec["argv"][0], {**os.environ, **spec["env"]}, ("graphframes",)):
        return ["the kernel's Python cannot import graphframes: pip install 'pyspark-jupyter-kernel[graphframes]'"]
    return []


def check_cds(python: str, env: dict[str, str]) -> list[CheckResult]:
    """Whether the driver starts from a class-data archive that still fits this Java and Spark."""
    if env.get("SPARK_REMOTE"):
        return []
    archive = cds.archive_in_kernel(env.get("PYSPARK_SUBMIT_ARGS", ""))
    if archive is None:
        return [CheckResult("CDS", SKIP, "no class-data archive (installed with --no-cds, or it could not be built)")]
    if not archive.is_file():
        return [CheckResult("CDS", WARN, f"archive {archive} is missing: the JVM starts without it", "pyspark-kernel install … --replace rebuilds it")]
    try:
        current = cds.archive_path(environment.resolve(env.get("SPARK_HOME"), python, environ=env))
    except SparkEnvironmentError:
        return [CheckResult("CDS", SKIP, "cannot tell: the Spark environment does not resolve (see above)")]
    if current.name != archive.name:  # the name carries the key (Java, Spark, jars, training); the folder is whoever's cache
        return [
            CheckResult(
                "CDS",
                WARN,
                f"archive {archive.name} was made for another Java or Spark (or an older training): the JVM ignores it or maps less of it",
                "pyspark-kernel install … --replace rebuilds it",
            )
        ]
    launcher = cds.archive_in_launcher(env.get(cds.LAUNCHER_VARIABLE, ""))
    if launcher is not None and not launcher.is_file():
        return [
            CheckResult(
                "CDS",
                WARN,
                f"launcher archive {launcher} is missing: spark-submit's launcher JVM starts without it",
                "pyspark-kernel install … --replace rebuilds it",
            )
        ]
    launched = (
        f"launcher JVM: {launcher}"
        if launcher
        else f"not for spark-submit's launcher JVM ({cds.LAUNCHER_VARIABLE} has no archive; install … --replace adds it)"
    )
    return [CheckResult("CDS", OK, f"in use: {archive}; {launched}")]


def check_temp_dirs(python: str, env: dict[str, str]) -> CheckResult:
    """The temp folders of this user's dead JVMs (a SIGKILL, e.g. the OOM killer, leaves them full)."""
    if env.get("SPARK_REMOTE"):
        return CheckResult("temp dirs", SKIP, "Spark Connect kernel: no local JVM")
    root = localdirs.user_root(env)
    untracked = ""
    if localdirs.user_chose_local_dirs(submitargs.parse(env.get("PYSPARK_SUBMIT_ARGS", submitargs.CLOSING)).conf, env):
        untracked = "; this kernelspec sets spark.local.dir or SPARK_LOCAL_DIRS, so its JVMs write there, untracked"
    dead = localdirs.leftovers(root)
    if not dead:
        return CheckResult("temp dirs", OK, f"no temp folders of dead JVMs in {root}{untracked}")
    megabytes = sum(localdirs.size_of(folder) for folder in dead) / 1e6
    return CheckResult(
        "temp dirs",
        WARN,
        f"{len(dead)} temp folder(s) of dead JVMs hold {megabytes:.1f} MB in {root}{untracked}",
        f"start any pyspark kernel (it removes them in the background), or run: {python} -m pyspark_kernel.localdirs",
    )


def check_isolation(env: dict[str, str], spark_version: str | None) -> CheckResult:
    """Offline: what of a local-mode kernel other accounts of this machine cannot reach (uiprotect.py)."""
    if env.get("SPARK_REMOTE"):
        return CheckResult("isolation", SKIP, "Spark Connect kernel: the server's own settings decide")
    submitted = submitargs.parse(env.get("PYSPARK_SUBMIT_ARGS", submitargs.CLOSING))
    if not isolation.makes_own_secret(submitted.master):
        return CheckResult("isolation", SKIP, f"master {submitted.master}: spark.authenticate needs the cluster's shared secret, set by its admins")
    conf, open_parts = submitted.conf, []
    rpc = "RPC and block transfers authenticated"
    if conf.get("spark.authenticate", "true").lower() != "true":
        rpc, open_parts = "RPC and block transfers OPEN (spark.authenticate=false)", ["--conf spark.authenticate=false"]
    elif conf.get("spark.network.crypto.enabled", "true").lower() == "true":
        rpc += " and encrypted"
    jars = environment.find_spark_home(None, env) / "jars" if spark_version else None
    if isolation.UI_FILTERS_KEY in conf:
        ui = "UI behind the kernelspec's spark.ui.filters" if conf[isolation.UI_FILTERS_KEY] else "UI OPEN (spark.ui.filters= in the kernelspec)"
    elif isolation.exposed_on_purpose(env):
        ui = f"UI not protected: SPARK_LOCAL_IP={isolation.exposed_on_purpose(env)} exposes this kernel's ports on purpose"
    elif spark_version and int(spark_version.split(".")[0]) < 4:
        ui = f"UI OPEN: Spark {spark_version} has no JWSFilter (Spark 4.0 has)"
    elif jars is not None and not any(jars.glob("jjwt-impl-*.jar")):
        ui = f"UI OPEN: no jjwt jars in {jars} for JWSFilter"
    else:
        ui = "UI behind JWSFilter (a key per JVM)"
    if "OPEN" in ui and "spark.ui.filters" in ui:
        open_parts.append("--conf spark.ui.filters=")
    detail = f"{rpc}; {ui}; py4j secret per launch"
    if "OPEN" not in detail:
        return CheckResult("isolation", SKIP if "on purpose" in ui else OK, detail)
    fix = (
        f"remove {' and '.join(open_parts)} from the kernelspec (pyspark-kernel install … --replace)"
        if open_parts
        else "use Spark >= 4.0 for a UI only its owner opens, or --conf spark.ui.enabled=false"
    )
    return CheckResult("isolation", WARN, detail, fix)


def check_channels(python: str, env: dict[str, str], metadata: dict[str, Any]) -> CheckResult:
    """Whether Jupyter can encrypt this kernel's ZMQ channels with CurveZMQ (channels.py)."""
    if not channels.declares_curve(metadata):
        return CheckResult(
            "channels",
            WARN,
            "the kernelspec does not declare CurveZMQ (metadata.supported_encryption): its channels stay unencrypted, "
            "so other local accounts can read its outputs from its ports (and transport_encryption=required refuses it)",
            "reinstall it with pyspark-kernel install … --replace",
        )
    if not channels.pyzmq_has_curve():
        return CheckResult(
            "channels",
            FAIL,
            f"pyzmq in {sys.executable} has no CurveZMQ: Jupyter refuses transport_encryption=auto or required (make run and the image set auto)",
            "pip install --force-reinstall pyzmq (PyPI's wheels have CurveZMQ), or a libzmq built with libsodium",
        )
    version = channels.kernel_ipykernel(python, env)
    if version is None or not channels.applies_curve_keys(version):
        return CheckResult(
            "channels",
            FAIL,
            f"{python} has ipykernel {version or '(none)'}, which ignores CurveZMQ keys: with transport encryption on, Jupyter cannot talk to the kernel",
            "pip install 'ipykernel>=7.3' into the kernel's Python",
        )
    return CheckResult(
        "channels",
        OK,
        f"CurveZMQ declared, in pyzmq, applied by ipykernel {version}: encrypted when Jupyter runs with --KernelManager.transport_encryption=auto (make run and the image do)",
    )


def check(name: str | None = None, prefix: str | None = None) -> list[CheckResult]:
    """All checks for kernelspec ``name`` (or the default environment), in the order a fix is needed."""
    python, env, metadata = target(name, prefix)
    home_result, spark_version = check_spark_home(env)
    results = [home_result, check_python_path(env), check_java(env, spark_version), *check_python(python, env, spark_version)]
    results += check_mode(python, env, metadata)
    results += check_cds(python, env)
    results.append(check_temp_dirs(python, env))
    results.append(check_isolation(env, spark_version))
    results.append(check_channels(python, env, metadata if name else channels.template_metadata()))
    provisioner = check_provisioner(metadata)
    return results + ([provisioner] if provisioner else [])


def format_table(results: list[CheckResult]) -> str:
    width = max(len(result.check) for result in results)
    lines = []
    for result in results:
        lines.append(f"{result.status:<4}  {result.check:<{width}}  {result.detail}")
        if result.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {result.fix}")
    return "\n".join(lines)
