"""``python -m pyspark_kernel -f CONNECTION_FILE`` starts the kernel (kernel/launch.py);
``python -m pyspark_kernel install …`` is the command line (cli/). Only the dispatch lives here, so a
kernel's start imports nothing of the command line."""

import sys

from pyspark_kernel.cli import COMMANDS


def main() -> None:
    if len(sys.argv) > 1 and (sys.argv[1] in COMMANDS or sys.argv[1] in ("-h", "--help", "--version")):
        from pyspark_kernel.cli.main import main as cli_main

        sys.exit(cli_main())
    from pyspark_kernel.kernel.launch import main as start_kernel

    start_kernel()


if __name__ == "__main__":
    main()
