"""``pyspark-kernel server status|stop``: your shared local Spark Connect servers (install --remote 'local[*]').

Each runs until no kernel has used it for its idle time (serverkeeper.py); ``stop`` ends them now, for
a new driver memory or Spark setting to take effect, or to give the memory back. A notebook still open
on a stopped server gets a new one at its next cell, which says what the notebook lost.
"""

from __future__ import annotations

import argparse

from pyspark_kernel import localserver


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    server = commands.add_parser("server", help="show or stop your shared local Spark Connect servers (install --remote 'local[*]')")
    server.add_argument("action", choices=("status", "stop"), help="status: each server's pid, port, Spark, memory and kernels; stop: stop them all")


def run(args: argparse.Namespace) -> int:
    statuses = [localserver.status(place) for place in localserver.places()]
    running = [status for status in statuses if status.pid is not None]
    if args.action == "status":
        if not running:
            print("No shared local Spark Connect server of yours is running (the first kernel of an install --remote 'local[*]' kernelspec starts one).")
        for status in running:
            print(status.line())
            print(f"  folder {status.place.folder} (logs in {status.place.log_dir})")
        return 0
    for status in running:
        with status.place.keeper_lock():
            localserver.stop(status.place)
        print(f"Stopped the shared local Spark Connect server pid {status.pid} (Spark {status.spark_version}, {status.kernels} kernel(s) attached).")
    if not running:
        print("No shared local Spark Connect server of yours is running.")
    return 0
