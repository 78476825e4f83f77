"""``pyspark-kernel``: install, list, show, remove and check PySpark kernelspecs.

Only argument parsing and the mapping of errors to messages and exit codes live here: 2 for a bad
request (nothing is written), 1 for a check that found a fault. The work is in environment.py,
kernelspec.py and doctor/ (the check table).
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import sys
from pathlib import Path

from jupyter_core.paths import prefer_environment_over_user

from pyspark_kernel import __version__, environment, masters, pythons, secrets, sparkhome, submitargs
from pyspark_kernel.cli import cds, doctor, kernelspec, server
from pyspark_kernel.cli.options import (
    DEFAULT_DISPLAY_NAME,
    DEFAULT_GRAPHFRAMES_VERSION,
    DEFAULT_NAME,
    SparkOptions,
    check_cluster,
    check_options,
    with_driver_java_options,
)
from pyspark_kernel.errors import KernelSpecError, Problem
from pyspark_kernel.localserver import DEFAULT_IDLE_TIMEOUT, is_local_remote

USAGE_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyspark-kernel",
        description="Install and manage Jupyter kernelspecs for the PySpark kernel (one per Spark environment).",
    )
    parser.add_argument("--version", action="version", version=f"pyspark-kernel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    install = commands.add_parser(
        "install", help="write a kernelspec for one Spark environment", description="Write a kernelspec (kernel.json + logos) for one Spark environment."
    )
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user (~/.local/share/jupyter)")
    where.add_argument("--sys-prefix", action="store_true", help="install into this Python's prefix (the default inside a venv or conda env)")
    where.add_argument("--prefix", metavar="DIR", help="install into DIR/share/jupyter/kernels (add DIR/share/jupyter to JUPYTER_PATH to find it)")
    install.add_argument("--name", default=DEFAULT_NAME, help="kernelspec name; Jupyter stores it lower-cased (default: %(default)s)")
    install.add_argument("--display-name", help=f"name shown in Jupyter's launcher (default: {DEFAULT_DISPLAY_NAME})")
    install.add_argument("--spark-home", metavar="PATH", help="the Spark to use (default: $SPARK_HOME, else the pip-installed pyspark)")
    install.add_argument("--python", metavar="PATH", help="the Python that runs the kernel and Spark's Python workers (default: this one)")
    install.add_argument("--master", default=masters.DEFAULT_MASTER, metavar="URL", help="Spark master URL, as for spark-submit (default: %(default)s)")
    install.add_argument(
        "--remote",
        metavar="URL",
        help="Spark Connect: a server's sc://HOST:PORT (the kernel runs no JVM), or local[*] / local[N]: every kernel of this kernelspec "
        "joins one local Connect server of yours (one JVM for all your notebooks), started by the first",
    )
    install.add_argument(
        "--server-idle-timeout",
        type=float,
        metavar="SECONDS",
        help=f"with --remote local[*]: stop the shared server once no kernel has used it for SECONDS (default {DEFAULT_IDLE_TIMEOUT:g})",
    )
    install.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark property, as for spark-submit; repeatable")
    install.add_argument(
        "--secret-conf",
        action="append",
        default=[],
        metavar="KEY",
        help="a Spark property whose value is read from stdin (a prompt without echo on a terminal), so it is on no command line; "
        "kept in a 0600 file of yours like every secret --conf; with --remote, a URL parameter such as token; repeatable",
    )
    install.add_argument("--packages", metavar="COORDS", help="comma-separated Maven coordinates, as for spark-submit")
    install.add_argument("--jars", metavar="PATHS", help="comma-separated jars for the driver and executors")
    install.add_argument("--py-files", metavar="PATHS", help="comma-separated .zip/.egg/.py files, also put on the kernel's PYTHONPATH")
    install.add_argument("--driver-memory", metavar="SIZE", help="driver JVM heap, e.g. 4g (the kernel's JVM in local mode)")
    install.add_argument("--k8s-image", metavar="IMAGE", help="Kubernetes: the container image executor pods run (spark.kubernetes.container.image)")
    install.add_argument("--k8s-namespace", metavar="NS", help="Kubernetes: the namespace of the executor pods (spark.kubernetes.namespace)")
    install.add_argument(
        "--graphframes",
        nargs="?",
        const=DEFAULT_GRAPHFRAMES_VERSION,
        metavar="VERSION",
        help="add GraphFrames (default version %(const)s) built for this Spark and Scala: its Maven coordinate to --packages, "
        "or a graphframes*.jar given with --jars (offline)",
    )
    install.add_argument(
        "--env", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="an extra environment variable for the kernel; repeatable"
    )
    install.add_argument("--start", default="eager", help="when to start Spark: eager (at kernel start, default), lazy (on first use of spark/sc) or none")
    install.add_argument(
        "--provisioner",
        action="store_true",
        help="launch through pyspark-kernel's kernel provisioner, which re-resolves Spark at every launch; the Jupyter server's Python must have this package",
    )
    install.add_argument(
        "--pool", type=int, default=0, metavar="N", help="keep N kernels started and warmed in the Jupyter server, handed out at launch (implies --provisioner)"
    )
    install.add_argument("--pool-idle-timeout", type=float, metavar="SECONDS", help="shut a pooled kernel down after SECONDS unused (default 1800)")
    install.add_argument(
        "--no-cds",
        dest="cds",
        action="store_false",
        help="do not use a JVM class-data archive (by default one is built once per Java and Spark, and cuts the session's start by about 40%%)",
    )
    install.add_argument("--replace", action="store_true", help="overwrite an existing kernelspec of the same name")

    listing = commands.add_parser("list", help="list the kernelspecs written by pyspark-kernel")
    show = commands.add_parser("show", help="print a kernelspec's kernel.json (secret values masked)")
    show.add_argument("name", help="kernelspec name")
    remove = commands.add_parser("remove", help="remove a kernelspec written by pyspark-kernel")
    remove.add_argument("name", help="kernelspec name")
    check = commands.add_parser("check", help="check Java, SPARK_HOME, pyspark and Python of a kernelspec (or of the default environment)")
    check.add_argument("name", nargs="?", help="kernelspec name (default: the environment install would use)")
    server.add_parser(commands)
    for sub in (listing, show, remove, check):
        sub.add_argument("--prefix", metavar="DIR", help="also look in DIR/share/jupyter/kernels")
    return parser


def options_from(args: argparse.Namespace) -> SparkOptions:
    conf = submitargs.parse_pairs(args.conf, "--conf")
    remote = args.remote
    for key in args.secret_conf:
        value = read_secret(key)
        if remote and not key.startswith("spark."):
            remote = secrets.join_remote(remote, {key: value})  # a Connect URL parameter (;token=…)
        else:
            conf[key] = value
    return SparkOptions(
        secret_keys=tuple(args.secret_conf),
        name=args.name,
        display_name=args.display_name or (args.name if args.name != DEFAULT_NAME else DEFAULT_DISPLAY_NAME),
        master=args.master,
        remote=remote,
        conf=conf,
        packages=args.packages,
        jars=args.jars,
        py_files=args.py_files,
        driver_memory=args.driver_memory,
        env=dict(args.env),
        start=args.start,
        provisioner=args.provisioner,
        pool=args.pool,
        pool_idle_timeout=args.pool_idle_timeout,
        k8s_image=args.k8s_image,
        k8s_namespace=args.k8s_namespace,
        graphframes=args.graphframes,
        server_idle_timeout=args.server_idle_timeout,
    )


def read_secret(key: str) -> str:
    """The value of ``--secret-conf KEY``: prompted without echo on a terminal, else one line of stdin."""
    value = getpass.getpass(f"{key}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if not value:
        raise KernelSpecError(
            f"--secret-conf {key} got no value on stdin.",
            f"pipe it in, one line per --secret-conf: printf '%s\\n' \"$VALUE\" | pyspark-kernel install --secret-conf {key} …",
        )
    return value


def run_install(args: argparse.Namespace) -> int:
    options = options_from(args)
    check_options(options)
    if options.remote is None:
        check_cluster(options, os.environ)
    prefix = sys.prefix if args.sys_prefix else args.prefix
    # jupyter_core's own rule: inside a venv or conda env (base included) the kernelspec goes there.
    user = args.user or (prefix is None and not prefer_environment_over_user())
    if prefix is None and not user:
        prefix = sys.prefix
    # As the kernel will see it: a SPARK_HOME or JAVA_HOME given with --env is the one to check, not the installer's.
    environ = {**os.environ, **options.env}
    # The cheap inputs before the destination (no process started): a wrong path is what to fix, whatever
    # the destination holds, and --replace would not help.
    sparkhome.find_spark(args.spark_home, environ)
    if args.python:
        pythons.executable_file(args.python)
    target = kernelspec.free_destination(options.name, user, prefix, args.replace)  # before the slow resolve
    local_server = is_local_remote(options.remote)
    spark = environment.resolve(args.spark_home, args.python, need_java=options.remote is None or local_server, environ=environ)
    if local_server:
        check_local_server(spark)
    if args.cds and (options.remote is None or local_server):
        options = with_class_data_sharing(spark, options)
    private = kernelspec.private_values(options)
    private_file = secrets.store_path(options.name, target) if private else None
    spec = kernelspec.kernel_json(spark, options, private_file=private_file)
    try:
        installed = kernelspec.install(spec, options.name, user=user, prefix=prefix, replace=args.replace, private=private)
    except OSError as error:
        if private_file and str(error.filename or "").startswith(str(secrets.store_dir().parent.parent)):
            raise KernelSpecError(
                f"Cannot write the secret file {private_file}: {error.strerror or error}.",
                "make your Jupyter data dir writable (or set JUPYTER_DATA_DIR to a folder of yours).",
            ) from None
        raise KernelSpecError(
            f"Cannot write the kernelspec to {target}: {error.strerror or error}.", "choose --user, or a --prefix you can write to."
        ) from None
    print(f"Installed kernelspec {options.name!r} in {installed}")
    print(f"  Spark {spark.spark_version} at {spark.spark_home}, master {spec['metadata'][kernelspec.METADATA_KEY]['master']}, Python {spark.python_version}")
    if prefix and not args.sys_prefix and prefix != sys.prefix:
        print(f"  Jupyter finds it with JUPYTER_PATH={prefix}/share/jupyter")
    for line in secret_lines(private, private_file, user):
        print(f"  {line}")
    for note in doctor.install_notes(spec):
        print(f"  note: {note}")
    return 0


def check_local_server(spark: environment.SparkEnvironment) -> None:
    """A shared local server is pyspark's persistent local Connect server, new in Spark 4.3."""
    major, minor = (int(part) if part.isdigit() else 0 for part in (spark.spark_version.split(".") + ["0", "0"])[:2])
    if (major, minor) < (4, 3):
        raise KernelSpecError(
            f"--remote local[*] needs Spark 4.3 or later (pyspark's shared local Connect server), but {spark.spark_home} is Spark {spark.spark_version}.",
            "use a Spark 4.3 SPARK_HOME (pip install 'pyspark[connect]>=4.3'), or install this Spark as a classic kernelspec (without --remote).",
        )


def secret_lines(private: dict[str, str], private_file: Path | None, user: bool) -> list[str]:
    """Where install put the secret values (never kernel.json), and who can launch the kernelspec then."""
    if not private or private_file is None:
        return []
    names = ", ".join(sorted(private))
    lines = [f"secret values ({names}) stored in {private_file} (0600, readable by you only); kernel.json holds only its path"]
    if not user:
        lines.append("note: the secrets are yours: another account launching this kernelspec cannot read them; it installs its own with --user")
    return lines


def with_class_data_sharing(spark: environment.SparkEnvironment, options: SparkOptions) -> SparkOptions:
    """Point the driver at this Java and Spark's class-data archive, building it the first time."""
    if not cds.archive_path(spark).is_file():
        print("Building the JVM class-data archive for this Java and Spark (once; about 30 s; --no-cds skips)...", file=sys.stderr)
    archive = cds.build_archive(spark)
    if archive is None:
        print("  the class-data archive could not be built; the kernel starts without it", file=sys.stderr)
        return options
    options = with_driver_java_options(options, cds.java_options(archive))
    # spark-submit's launcher JVM runs before the driver's, with its own archive; a user's --env wins
    return dataclasses.replace(options, env={**cds.launcher_env(spark), **options.env})


def run_list(args: argparse.Namespace) -> int:
    specs = kernelspec.our_specs(args.prefix)
    if not specs:
        print("No pyspark-kernel kernelspecs found. Create one with: pyspark-kernel install")
        return 0
    rows = [("NAME", "SPARK", "MASTER", "SPARK_HOME", "LOCATION")]
    for name, found in specs.items():
        meta = found["spec"]["metadata"][kernelspec.METADATA_KEY]
        master = secrets.redact_remote(str(meta.get("master", "?")))  # older kernelspecs kept a token in it
        rows.append((name, meta.get("spark_version", "?"), master, meta.get("spark_home", "?"), found["resource_dir"]))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
    return 0


def run_show(args: argparse.Namespace) -> int:
    _, spec = kernelspec.find_spec(args.name, args.prefix)
    print(json.dumps(kernelspec.redacted(spec), indent=2))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    removed = kernelspec.remove(args.name, args.prefix)
    print(f"Removed kernelspec {args.name!r} from {removed}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    results = doctor.check(args.name, args.prefix)
    print(doctor.format_table(results))
    return 1 if any(result.status == doctor.FAIL for result in results) else 0


# One runner per subcommand of cli/__init__.py's COMMANDS (the set ``python -m pyspark_kernel`` dispatches on).
RUNNERS = {"install": run_install, "list": run_list, "show": run_show, "remove": run_remove, "check": run_check, "server": server.run}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return RUNNERS[args.command](args)
    except Problem as error:
        print(f"pyspark-kernel {args.command}: error: {error}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
