"""The rows of what a kernel's master and packages need beyond the local machine: YARN's client
configuration, a Kubernetes API server and executor image, and GraphFrames' jar and Python module.
All offline: the cluster itself is never asked, so ``check`` answers the same on a laptop."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pyspark_kernel.cli import kernelspec, options
from pyspark_kernel.cli.doctor.result import FAIL, OK, WARN, CheckResult
from pyspark_kernel.pythons import python_imports


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


def install_notes(spec: dict[str, Any]) -> list[str]:
    """What install should tell about the kernelspec it just wrote (it is written either way)."""
    wanted = spec["metadata"].get(kernelspec.METADATA_KEY, {}).get("graphframes")
    if wanted and python_imports(spec["argv"][0], {**os.environ, **spec["env"]}, ("graphframes",)):
        return ["the kernel's Python cannot import graphframes: pip install 'pyspark-jupyter-kernel[graphframes]'"]
    return []
