"""The rows about sharing the machine: what other local accounts can reach of a kernel (its Spark
RPC and UI, its ZMQ channels), and what this user's dead JVMs left in the temp folders."""

from __future__ import annotations

import sys
from typing import Any

from pyspark_kernel import isolation, localdirs, sparkhome, submitargs
from pyspark_kernel.cli import channels
from pyspark_kernel.cli.doctor.result import FAIL, OK, SKIP, WARN, CheckResult


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


def ui_protection(conf: dict[str, str], env: dict[str, str], spark_version: str | None) -> str:
    """How the Spark UI of a local-mode kernel is protected, in words; "OPEN" in them when it is not."""
    if isolation.UI_FILTERS_KEY in conf:
        return "UI behind the kernelspec's spark.ui.filters" if conf[isolation.UI_FILTERS_KEY] else "UI OPEN (spark.ui.filters= in the kernelspec)"
    if isolation.exposed_on_purpose(env):
        return f"UI not protected: SPARK_LOCAL_IP={isolation.exposed_on_purpose(env)} exposes this kernel's ports on purpose"
    if spark_version and int(spark_version.split(".")[0]) < 4:
        return f"UI OPEN: Spark {spark_version} has no JWSFilter (Spark 4.0 has)"
    jars = sparkhome.find_spark_home(None, env) / "jars" if spark_version else None  # SPARK_HOME resolved: a version was read
    if jars is not None and not any(jars.glob("jjwt-impl-*.jar")):
        return f"UI OPEN: no jjwt jars in {jars} for JWSFilter"
    return "UI behind JWSFilter (a key per JVM)"


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
    ui = ui_protection(conf, env, spark_version)
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
