"""What a Spark Connect kernel cannot do, said once with the way out: RDDs, ``sc`` and SparkContext.

A Connect session lives on a server, and the kernel's process has no JVM of its own, so pyspark's RDD
API and everything behind SparkContext fail there, each in its own shape: a NameError for ``sc``,
JVM_ATTRIBUTE_NOT_SUPPORTED for ``spark.sparkContext`` (and ``_jsc``, ``_jvm``, ``_jdf``...),
NOT_IMPLEMENTED for ``df.rdd``, CONTEXT_UNAVAILABLE_FOR_REMOTE_CLIENT for ``SparkContext(...)``. None of
them names the fix, which is another kernelspec. The cell shows :class:`NotInSparkConnect` in their place
(cellerrors.py); only the message changes: the cell fails as it would in plain ipykernel, pyspark's error
is the message's ``__cause__`` and stays ``sys.last_value``, so ``%tb`` prints its traceback.

Nothing here imports pyspark: errors are recognised by their condition, which pyspark's errors carry.
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark_kernel import localserver, secrets
from pyspark_kernel.errors import Problem

logger = logging.getLogger(__name__)

# The built-in bases of the errors that say "not in Spark Connect" (pyspark's PySparkAttributeError,
# PySparkNotImplementedError and PySparkRuntimeError derive from the last three): what the kernel asks
# IPython to hand to its error handler in a Connect kernel. Anything else of these types shows as usual.
WATCHED: tuple[type[BaseException], ...] = (NameError, AttributeError, NotImplementedError, RuntimeError)

# The names of pyspark's JVM-only objects that user code in a classic session commonly reaches for
CONTEXT_NAMES = frozenset({"sc"})


class NotInSparkConnect(Problem, RuntimeError):
    """Shown in place of the error of a cell that used RDDs, ``sc`` or SparkContext in a Connect kernel."""


def what_was_used(error: BaseException) -> str | None:
    """What the cell reached for that Spark Connect lacks, as the message names it; None for any other error."""
    if isinstance(error, NameError) and getattr(error, "name", None) in CONTEXT_NAMES:
        return f"`{error.name}` (a SparkContext)"
    condition, parameters = condition_of(error)
    if condition == "JVM_ATTRIBUTE_NOT_SUPPORTED":
        attribute = parameters.get("attr_name", "")
        return "`spark.sparkContext`" if attribute == "sparkContext" else f"`{attribute}` (a JVM object)"
    if condition == "NOT_IMPLEMENTED" and parameters.get("feature") == "rdd":
        return "`DataFrame.rdd` (an RDD)"
    if condition == "CONTEXT_UNAVAILABLE_FOR_REMOTE_CLIENT":
        return "a SparkContext"
    return None


def condition_of(error: BaseException) -> tuple[str | None, dict[str, str]]:
    """A PySparkException's error condition and its message parameters; (None, {}) for other errors."""
    try:
        condition = error.getCondition() if hasattr(error, "getCondition") else getattr(error, "getErrorClass", lambda: None)()
        parameters = error.getMessageParameters() if hasattr(error, "getMessageParameters") else None
    except Exception:
        return None, {}
    return condition, dict(parameters or {})


def explain(error: BaseException, remote: str) -> NotInSparkConnect | None:
    """The one message for ``error`` in a kernel on the Spark Connect server ``remote``, or None when
    ``error`` is not about what Connect lacks. The message's cause is ``error``."""
    used = what_was_used(error)
    if used is None:
        return None
    server = f"a shared local server, {remote}" if localserver.is_local_remote(remote) else secrets.redact_remote(remote)
    problem = (
        f"{used} is not available: this kernel runs on Spark Connect ({server}), "
        "which has no SparkContext, so no `sc`, RDDs, broadcast variables, accumulators or setLogLevel."
    )
    limit = NotInSparkConnect(problem, fix_text(classic_kernelspecs()))
    limit.__cause__ = error
    return limit


def fix_text(classic: list[str]) -> str:
    """Name the classic kernelspecs installed, or say how to install one."""
    where = "Kernel > Change Kernel"
    if classic:
        return (
            f"run this notebook in a classic PySpark kernel: {' or '.join(classic)} in {where}. "
            "DataFrame and SQL code runs in both. (%tb shows pyspark's own error.)"
        )
    return (
        "install a classic PySpark kernel with `pyspark-kernel install` (without --remote) and pick it in "
        f"{where}. DataFrame and SQL code runs in both. (%tb shows pyspark's own error.)"
    )


def classic_kernelspecs() -> list[str]:
    """The classic (JVM in the kernel) kernelspecs of this tool that Jupyter finds, as a menu shows them:
    ``"Display name" (name)``. Read when the message is shown, never before: a cell that fails can wait."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().get_all_specs()
    except Exception as error:  # the message still says how to install one
        logger.warning("could not list the installed kernelspecs: %s", error)
        return []
    return [f'"{entry["spec"].get("display_name", name)}" ({name})' for name, entry in sorted(specs.items()) if is_classic(entry["spec"])]


def is_classic(spec: dict[str, Any]) -> bool:
    """A kernelspec this tool wrote (its metadata block) whose kernels start their own JVM (no SPARK_REMOTE)."""
    return "pyspark_kernel" in spec.get("metadata", {}) and not spec.get("env", {}).get("SPARK_REMOTE")


def local_context_refused() -> BaseException:
    """The error a SparkContext gets in a Connect kernel before it can launch a local JVM: pyspark's own
    CONTEXT_UNAVAILABLE_FOR_REMOTE_CLIENT, which pyspark raises itself once a Connect session exists."""
    from pyspark.errors import PySparkRuntimeError

    return PySparkRuntimeError(errorClass="CONTEXT_UNAVAILABLE_FOR_REMOTE_CLIENT", messageParameters={})
