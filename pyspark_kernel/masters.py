"""What a Spark master URL says about where the driver's work runs: one home for these rules.

A local master runs driver and executors on this machine (free to warm up, its ports private to it); a
single-JVM one (not local-cluster) also has Spark make its RPC secret inside the JVM (isolation.py).
"""

from __future__ import annotations

import re

DEFAULT_MASTER = "local[*]"
# Spark's own single-JVM masters (SparkMasterRegex: "local", LOCAL_N_REGEX, LOCAL_N_FAILURES_REGEX):
# local, local[N], local[*], local[N,F], local[*,F].
SINGLE_JVM_MASTER = re.compile(r"local(\[\s*(\d+|\*)\s*(,\s*\d+\s*)?\])?")
# ...and local-cluster[N,C,M], whose executors are separate JVMs on this machine.
LOCAL_CLUSTER_MASTER = re.compile(r"local-cluster\[[\d\s,]+\]")


def is_single_jvm_master(master: str | None) -> bool:
    """Driver and executors in one JVM: Spark's local mode."""
    return master is not None and SINGLE_JVM_MASTER.fullmatch(master.strip()) is not None


def is_local_master(master: str | None) -> bool:
    """Driver and executors all on this machine: local mode or local-cluster."""
    return is_single_jvm_master(master) or (master is not None and LOCAL_CLUSTER_MASTER.fullmatch(master.strip()) is not None)


def is_yarn_master(master: str) -> bool:
    return master == "yarn"


def is_k8s_master(master: str) -> bool:
    return master.startswith("k8s://")
