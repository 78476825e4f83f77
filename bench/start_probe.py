"""Where a bare session's start goes, in paired alternating runs (A B A B ...): the issue-14 probe.

Not part of `make bench`; run by hand when the class-data archive or the launcher options change:

    python bench/start_probe.py launcher --pairs 12   # the launcher JVM alone, each option against none
    python bench/start_probe.py session --pairs 5     # start -> first count, launcher options off / on
    python bench/start_probe.py training --pairs 5 --old-archive OLD.jsa  # driver archive: old training vs the kernel's
    python bench/start_probe.py classes --old-archive OLD.jsa  # classes a kernel's driver loads outside each archive
    python bench/start_probe.py unsigned --pairs 5    # the archive with unsigned copies of the signed jars first

``spark-submit`` runs ``bin/spark-class``, which first runs a small JVM (``org.apache.spark.launcher.Main``,
``java -Xmx128m $SPARK_LAUNCHER_OPTS -cp jars/*``) only to print the driver's command, then execs the
driver JVM. Each variant is timed in the same rounds as its baseline so that a busy machine moves both.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pyspark_kernel import environment, notebookconf, submitargs  # noqa: E402
from pyspark_kernel.cli import cds  # noqa: E402
from pyspark_kernel.kernel import warmup  # noqa: E402

SESSION = """
import json, sys, time
started = time.perf_counter()
from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession
imported = time.perf_counter()
SparkContext._ensure_initialized(conf=SparkConf())  # spark-submit: the launcher JVM, then the driver's gateway
gateway = time.perf_counter()
spark = SparkSession.builder.getOrCreate()
session = time.perf_counter()
assert spark.range(10).count() == 10
counted = time.perf_counter()
import psutil  # CPU seconds move less than wall ones on a busy machine
jvms = [child for child in psutil.Process().children(recursive=True) if "java" in child.name()]
jvm_cpu = sum(sum(jvm.cpu_times()[:2]) for jvm in jvms)
spark.stop()
print(json.dumps({"import": imported - started, "gateway": gateway - imported, "context": session - gateway, "count": counted - session, "to_count": counted - started, "driver_cpu": jvm_cpu}))
"""


def time_launcher(spark: environment.SparkEnvironment, options: str) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one launcher JVM: CPU moves less than wall on a busy machine."""
    env = {**os.environ, "SPARK_HOME": str(spark.spark_home), "SPARK_SCALA_VERSION": spark.scala_version}
    started = time.perf_counter()
    process = subprocess.Popen(cds.launcher_command(spark, options.split()), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, f"launcher failed with {options}"
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def session_env(spark: environment.SparkEnvironment, driver_options: str, launcher_options: str, class_path: str = "") -> dict[str, str]:
    conf = dict(notebookconf.NOTEBOOK_DEFAULTS)
    if driver_options:
        conf["spark.driver.extraJavaOptions"] = driver_options
    if class_path:
        conf["spark.driver.extraClassPath"] = class_path
    env = {
        **os.environ,
        "SPARK_HOME": str(spark.spark_home),
        "PYTHONPATH": os.pathsep.join(spark.python_path),
        "PYSPARK_PYTHON": str(spark.python),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_SUBMIT_ARGS": submitargs.build("local[*]", {}, conf),
    }
    env.pop("SPARK_LAUNCHER_OPTS", None)
    if launcher_options:
        env["SPARK_LAUNCHER_OPTS"] = launcher_options
    return env


def time_session(spark: environment.SparkEnvironment, driver_options: str, launcher_options: str, class_path: str = "") -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="start-probe-") as work:
        started = time.perf_counter()
        result = subprocess.run(
            [str(spark.python), "-c", SESSION],
            env=session_env(spark, driver_options, launcher_options, class_path),
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
        )
        phases = json.loads(result.stdout.strip().splitlines()[-1])
        phases["process"] = time.perf_counter() - started
    return phases


def paired(variants: dict[str, object], measure, pairs: int) -> dict[str, list]:
    """Each round runs every variant once, in an order that alternates, after one untimed warm-up each."""
    for setting in variants.values():
        measure(setting)
    samples: dict[str, list] = {name: [] for name in variants}
    names = list(variants)
    for round_number in range(pairs):
        for name in names if round_number % 2 == 0 else names[::-1]:
            samples[name].append(measure(variants[name]))
        print(f"round {round_number + 1}/{pairs}", file=sys.stderr)
    return samples


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.2f}-{max(values):.2f})"


def launcher_report(spark: environment.SparkEnvironment, pairs: int) -> None:
    archive = cds.launcher_archive(spark, rebuild=True)
    share = f"-XX:SharedArchiveFile={archive} -Xshare:auto"
    variants = {
        "none": "",
        "archive": share,
        "C1 only": "-XX:TieredStopAtLevel=1",
        "serial GC": "-XX:+UseSerialGC",
        "archive + C1": f"{share} -XX:TieredStopAtLevel=1",
        "all (archive, C1, serial GC)": f"{share} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    }
    samples = paired(variants, lambda options: time_launcher(spark, options), pairs)
    wall_base = statistics.median(wall for wall, _ in samples["none"])
    cpu_base = statistics.median(cpu for _, cpu in samples["none"])
    for name, values in samples.items():
        wall, cpu = [w for w, _ in values], [c for _, c in values]
        print(
            f"launcher JVM, {name:<30} wall {summary(wall)} {statistics.median(wall) - wall_base:+.3f} s; CPU {summary(cpu)} {statistics.median(cpu) - cpu_base:+.3f} s"
        )


def session_report(spark: environment.SparkEnvironment, pairs: int, variants: dict[str, tuple[str, ...]]) -> None:
    samples = paired(variants, lambda setting: time_session(spark, *setting), pairs)
    for name, runs in samples.items():
        phases = {phase: [run[phase] for run in runs] for phase in runs[0]}
        print(
            f"{name}: "
            + "; ".join(f"{phase} {statistics.median(values):.3f}" for phase, values in phases.items())
            + f"  (process {summary(phases['process'])})"
        )


NOTEBOOK = (
    "spark.range(10).count()",
    "spark.sql('SELECT 1 AS one').collect()",
    "spark.range(5).toPandas().shape",
    "spark.range(3).withColumn('x', F.col('id') * 2)",
    "spark.range(100).groupBy((F.col('id') % 3).alias('k')).agg(F.sum('id')).orderBy('k').collect()",
)


def source_kind(line: str) -> str:
    """Where a class not from the archive came from: a JDK module, a Spark jar, or made at run time."""
    source = line.split("source:", 1)[1].strip()
    if source.startswith("jrt:/"):
        return "JDK module " + source[5:].split("/")[0]
    if source.startswith("file:"):
        return "jar " + source.rsplit("/", 1)[-1]
    return source.split(" ")[0] if not source.startswith("instance of") else "defined by a class loader (generated)"


def class_sources(archive: Path | None, idle: float, class_path: str = "") -> tuple[int, int, Counter]:
    """(classes the kernel's driver loaded, of them from the archive) over a first count, ``idle``
    seconds for the warm-up (on) and a few first cells, in a real kernel from a real kernelspec."""
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import KernelHarness

    with tempfile.TemporaryDirectory(prefix="start-probe-") as work:
        log = Path(work) / "classes.log"
        options = (cds.java_options(archive) + " " if archive else "") + f"-Xlog:class+load=info:file={log}"
        for variable in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
            os.environ[variable] = str(Path(work) / variable.lower())
        os.environ["JUPYTER_PATH"] = f"{work}/share/jupyter"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pyspark_kernel",
                "install",
                "--prefix",
                work,
                "--name",
                "probe",
                "--no-cds",
                "--replace",
                "--conf",
                f"spark.driver.extraJavaOptions={options}",
                "--env",
                "PYSPARK_KERNEL_WARMUP",
                "on",
                *(["--conf", f"spark.driver.extraClassPath={class_path}"] if class_path else []),
            ],
            check=True,
            capture_output=True,
        )
        kernel = KernelHarness("probe")
        try:
            kernel.value(NOTEBOOK[0])
            time.sleep(idle)
            kernel.value("from pyspark.sql import functions as F; 1")
            for cell in NOTEBOOK[1:]:
                kernel.value(cell)
        finally:
            kernel.shutdown()
        lines = [line for line in log.read_text().splitlines() if "source:" in line]
    misses = Counter(source_kind(line) for line in lines if "shared objects file" not in line)
    return len(lines), sum("shared objects file" in line for line in lines), misses


SIGNATURE = re.compile(r"META-INF/[^/]+\.(SF|RSA|DSA|EC)")


def unsigned_copies(spark: environment.SparkEnvironment, folder: Path) -> list[str]:
    """Copies of SPARK_HOME's signed jars (janino, commons-compiler here) without their signatures."""
    copies = []
    for jar in sorted((spark.spark_home / "jars").glob("*.jar")):
        with zipfile.ZipFile(jar) as source:
            if not any(SIGNATURE.fullmatch(name) for name in source.namelist()):
                continue
            copy = folder / jar.name
            with zipfile.ZipFile(copy, "w", zipfile.ZIP_DEFLATED) as target:
                for item in source.infolist():
                    if not SIGNATURE.fullmatch(item.filename):
                        target.writestr(item, source.read(item.filename))
            copies.append(str(copy))
    return copies


def unsigned_training(spark: environment.SparkEnvironment, folder: Path) -> tuple[Path, str]:
    """An archive trained with unsigned copies of the signed jars first on the driver's class path:
    CDS skips every class of a signed jar ("Skipping ...: Signed JAR" in -Xlog:cds), and janino is
    what compiles every query's generated code."""
    copies = unsigned_copies(spark, folder)
    class_path, archive = ":".join(copies), folder / "unsigned.jsa"
    submit_args = submitargs.with_conf(cds.training_submit_args(f"-XX:ArchiveClassesAtExit={archive}"), {"spark.driver.extraClassPath": class_path})
    env = {**session_env(spark, "", ""), "PYSPARK_SUBMIT_ARGS": submit_args}
    shutil.copyfile(warmup.__file__, folder / "kernel_warmup.py")
    subprocess.run([str(spark.python), "-c", cds.TRAINING], env=env, cwd=folder, check=True, capture_output=True)
    assert cds.wait_written(archive), "the training run wrote no archive"
    return archive, class_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("launcher", "session", "training", "classes", "unsigned"))
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--class-path", default="", help="unsigned: the driver class path the --archive was trained with")
    parser.add_argument("--archive", type=Path, help="unsigned: the archive trained with --class-path")
    parser.add_argument("--old-archive", type=Path, help="training: a driver archive made by the old training run")
    args = parser.parse_args()
    spark = environment.resolve()
    if args.what == "launcher":
        launcher_report(spark, args.pairs)
    elif args.what == "session":
        driver = cds.java_options(cds.build_archive(spark))
        session_report(
            spark,
            args.pairs,
            {"driver archive": (driver, ""), "driver archive + launcher options": (driver, cds.launcher_options(cds.launcher_archive(spark)))},
        )
    elif args.what == "unsigned":
        current = cds.build_archive(spark)
        if args.archive is None:
            args.archive, args.class_path = unsigned_training(spark, Path(tempfile.mkdtemp(prefix="start-probe-unsigned-")))
        for name, archive, class_path in (("signed janino", current, ""), ("unsigned copies first", args.archive, args.class_path)):
            loaded, shared, misses = class_sources(archive, 20, class_path)
            print(f"{name}: the kernel's driver loaded {loaded} classes, {shared} from the archive, {loaded - shared} not")
            print("   not from the archive: " + ", ".join(f"{kind} {count}" for kind, count in misses.most_common(8)))
        session_report(
            spark,
            args.pairs,
            {"signed janino": (cds.java_options(current), ""), "unsigned copies first": (cds.java_options(args.archive), "", args.class_path)},
        )
    elif args.what == "classes":
        for archive in (args.old_archive, cds.build_archive(spark)) if args.old_archive else (cds.build_archive(spark),):
            loaded, shared, misses = class_sources(archive, idle=20)
            print(f"{archive.name if archive else 'no archive'}: the kernel's driver loaded {loaded} classes, {shared} from the archive, {loaded - shared} not")
            print("   not from the archive: " + ", ".join(f"{kind} {count}" for kind, count in misses.most_common(8)))
    else:
        current = cds.build_archive(spark)
        old = args.old_archive
        session_report(
            spark,
            args.pairs,
            {
                "no archive": ("", ""),
                f"old training {old.name}": (cds.java_options(old), ""),
                f"kernel training {current.name}": (cds.java_options(current), ""),
            },
        )


if __name__ == "__main__":
    main()
