"""Isolation between the users of one machine: what a local-mode kernel's JVM lets other accounts do,
and when the kernel protects it. Read by the kernel (which applies it, kernel/uiprotect.py) and by
``pyspark-kernel check`` (which reports it).

Binding 127.0.0.1 keeps the network out, not the other accounts of the same machine. So, unless the
kernelspec's own ``--conf`` says otherwise:

- the driver's RPC and block-manager ports authenticate every client (``spark.authenticate``) and
  encrypt what they carry (``spark.network.crypto.enabled``). In local mode Spark's SecurityManager
  makes the secret itself, inside the JVM (``initializeAuth``: "In YARN and local mode, generate a new
  secret"), so no secret is passed at all; these two switches ride on spark-submit's command line;
- the Spark UI sits behind Spark's own ``org.apache.spark.ui.JWSFilter`` (Spark >= 4.0) with a key made
  for each JVM (kernel/uiprotect.py); the owner's browser gets in through the Jupyter server
  (server/uiproxy.py);
- py4j keeps the per-launch secret pyspark gives it (in the JVM's environment, never on its command line).

Spark 3.5 has no JWSFilter: its UI stays open to every local account, and the kernel says so.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark_kernel import submitargs
from pyspark_kernel.masters import is_single_jvm_master

RPC_DEFAULTS = {"spark.authenticate": "true", "spark.network.crypto.enabled": "true"}
UI_FILTER = "org.apache.spark.ui.JWSFilter"
UI_FILTERS_KEY = "spark.ui.filters"


def makes_own_secret(master: str) -> bool:
    """True when Spark generates the auth secret inside the JVM for ``master`` (SecurityManager's
    initializeAuth: local mode; any other master needs spark.authenticate.secret from its user)."""
    return is_single_jvm_master(master)


def rpc_defaults(master: str) -> dict[str, str]:
    """The launch conf that authenticates and encrypts the driver's RPC and block transfers: for local
    masters only (a cluster's executors would need the secret too, which is the cluster admin's call)."""
    return dict(RPC_DEFAULTS) if makes_own_secret(master) else {}


def exposed_on_purpose(environ: Mapping[str, str]) -> str | None:
    """The kernelspec's SPARK_LOCAL_IP when it lifts local mode's loopback default (``--env
    SPARK_LOCAL_IP 0.0.0.0``, as the Docker image does so that a published port reaches the UI)."""
    address = environ.get("SPARK_LOCAL_IP", "").strip()
    return address if address and not (address.startswith("127.") or address in ("localhost", "::1")) else None


def ui_filter_wanted(submit_args: str, environ: Mapping[str, str]) -> bool:
    """Whether a JVM of these spark-submit arguments gets JWSFilter: local mode on loopback, and no
    ``spark.ui.filters`` of the user's. A UI exposed on purpose stays reachable as it was asked to be."""
    submitted = submitargs.parse(submit_args)
    return makes_own_secret(submitted.master) and UI_FILTERS_KEY not in submitted.conf and not exposed_on_purpose(environ)
