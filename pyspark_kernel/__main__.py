"""``python -m pyspark_kernel -f CONNECTION_FILE`` starts the kernel; ``python -m pyspark_kernel install …`` is the CLI."""

import sys

COMMANDS = {"install", "list", "show", "remove", "check", "-h", "--help", "--version"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
        from .cli import main as cli_main

        sys.exit(cli_main())
    from ipykernel.kernelapp import IPKernelApp

    from .kernel import PySparkKernel

    IPKernelApp.launch_instance(kernel_class=PySparkKernel)


if __name__ == "__main__":
    main()
