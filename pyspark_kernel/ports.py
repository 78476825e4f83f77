"""Ports for the Spark UI: a module of its own, since both the kernel (session.py) and the launcher
plugin (provisioner.py, inside the Jupyter server, which must not import the kernel's modules) need it."""

from __future__ import annotations


class NoFreePortError(RuntimeError):
    """Every port in the searched range is taken; the message says how to choose one."""


def free_port(start: int, taken: set[int] | frozenset[int] = frozenset(), tries: int = 500) -> int:
    """The first port from ``start`` that nothing on this machine listens on and is not in ``taken``."""
    import socket

    for port in range(start, start + tries):
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise NoFreePortError(f"No free port for the Spark UI in {start}-{start + tries - 1}.\nFix: set --conf spark.ui.port=PORT in the kernelspec.")
