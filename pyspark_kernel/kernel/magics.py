"""``%spark`` (status, restart, stop, conf, progress, loglevel, log) and ``%%sql``.

Thin: each subcommand calls the controller (controller.py), which owns the session, the namespace
binding and the progress flag; the magics never see the kernel.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from pyspark_kernel import secrets
from pyspark_kernel.errors import ConfPairError
from pyspark_kernel.kernel import frametable, sqlcell
from pyspark_kernel.kernel.controller import SparkController
from pyspark_kernel.kernel.jvm import read_tail
from pyspark_kernel.submitargs import parse_pairs
from pyspark_kernel.variables import progress_mode

LOG_LEVELS = ("ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN")

USAGE = """%spark                   status: version, master, app id, Spark UI, executors, cores
%spark restart           a new session (Python variables are kept)
%spark stop              stop the session and its JVM
%spark conf KEY=VALUE …  restart with these settings merged over the current ones
%spark progress MODE     live job progress in cells: full (jobs, stages, timeline), bar, or off
%spark loglevel LEVEL    the JVM's log level (WARN by default)
%spark log               the last lines of the JVM's log"""


@magics_class
class SparkMagics(Magics):
    def __init__(self, shell: Any, controller: SparkController) -> None:
        super().__init__(shell)
        self.controller = controller

    @line_magic("spark")  # type: ignore[arg-type]  # IPython types its magic decorators for plain functions
    def spark_magic(self, line: str) -> None:
        """Manage this kernel's Spark session; ``%spark help`` lists the subcommands."""
        words = shlex.split(line)
        command, args = (words[0], words[1:]) if words else ("status", [])
        handler = self.subcommands.get(command)
        if handler is None:
            print(USAGE)
            return
        handler(args)

    @property
    def subcommands(self) -> dict[str, Callable[[list[str]], None]]:
        """The one list of what ``%spark WORD`` runs: nothing else on this object is reachable."""
        return {
            "status": self._status,
            "help": self._help,
            "restart": self._restart,
            "stop": self._stop,
            "conf": self._conf,
            "progress": self._progress,
            "loglevel": self._loglevel,
            "log": self._log,
        }

    def _help(self, args: list[str]) -> None:
        print(USAGE)

    def _status(self, args: list[str]) -> None:
        session = self.controller.session
        seconds = session.starter.seconds
        started = f" (started in {seconds:.1f} s)" if seconds else ""
        lines = [f"state: {session.state.value}{started}"]
        if session.ready:
            spark = session.get()
            lines += [f"Spark {spark.version}", *session.backend.status_lines(spark)]
        lines.append(f"progress: {self.controller.progress.mode}")
        if session.settings.log_path:
            lines.append(f"JVM log: {session.settings.log_path}")
        print("\n".join(lines))

    def _restart(self, args: list[str]) -> None:
        self.controller.restart()

    def _stop(self, args: list[str]) -> None:
        self.controller.stop()
        print("Spark stopped. %spark restart starts a new session.")

    def _conf(self, args: list[str]) -> None:
        try:
            pairs = parse_pairs(args, "%spark conf")
        except ConfPairError as error:
            print(error)
            return
        if not pairs:
            overrides = self.controller.session.conf_overrides
            shown = secrets.masked(overrides)  # a cell's output is saved in the notebook
            print("\n".join(f"{key}={value}" for key, value in shown.items()) or "no settings from %spark conf yet")
            return
        self.controller.restart(pairs)

    def _progress(self, args: list[str]) -> None:
        mode = progress_mode(args[0]) if len(args) == 1 else None
        if mode is None:
            print(f"usage: %spark progress full|bar|off (now {self.controller.progress.mode}; on means full)")
            return
        self.controller.progress.mode = mode
        print(f"Spark progress display: {mode}")

    def _loglevel(self, args: list[str]) -> None:
        if len(args) != 1 or args[0].upper() not in LOG_LEVELS:
            print(f"usage: %spark loglevel LEVEL (one of {', '.join(LOG_LEVELS)})")
            return
        session = self.controller.session
        session.backend.set_log_level(session.get(), args[0].upper())
        print(f"JVM log level {args[0].upper()}")

    def _log(self, args: list[str]) -> None:
        print(read_tail(self.controller.session.settings.log_path, int(args[0]) if args else 40) or "(the JVM log is empty)")

    # IPython's magic_arguments decorators are untyped.
    @magic_arguments()  # type: ignore[no-untyped-call, untyped-decorator]
    @argument("-o", "--output", metavar="NAME", help="store the result DataFrame in this variable")  # type: ignore[no-untyped-call, untyped-decorator]
    @argument("-n", "--limit", type=int, default=20, help="rows to show (default 20)")  # type: ignore[no-untyped-call, untyped-decorator]
    @cell_magic
    def sql(self, line: str, cell: str) -> None:
        """Run the cell as Spark SQL and show the first rows as a DataFrame's table; ``{name}`` is a Python variable."""
        args = parse_argstring(self.sql, line)  # type: ignore[no-untyped-call]  # IPython's magic_arguments is untyped
        assert self.shell is not None, "magics registered with a shell have it"
        values = sqlcell.references(cell, self.shell.user_ns)
        with sqlcell.quiet_query_log():
            try:
                frame = self.controller.session.get().sql(cell, **values)
                columns = frame.columns  # a Connect session analyses the query here
                rows = frametable.read_first(frame, args.limit) if columns else None
            except Exception as error:
                explained = sqlcell.explain(error, cell)
                if explained is None:
                    raise
                raise explained from error
        if args.output:
            self.shell.user_ns[args.output] = frame
        if rows is None:
            return  # DDL and other statements without a result
        # the table of a DataFrame's display (frametable.py), with the -n rows and whole values
        display({"text/plain": frametable.to_text(rows).rstrip("\n"), "text/html": frametable.to_html(rows)}, raw=True)  # type: ignore[no-untyped-call]  # IPython.display is untyped
