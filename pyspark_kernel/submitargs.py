"""PYSPARK_SUBMIT_ARGS: the one place that builds, reads, extends and redacts it.

pyspark hands this variable to spark-submit, split as a shell would, so it is where a kernelspec keeps
the master, the driver's memory, packages and ``--conf`` settings (the data path's second step writes it,
the kernel's session and the launcher plugin read and extend it, ``check`` and ``show`` read it). Every
value is quoted; a later ``--conf`` of a key wins, as on spark-submit's command line.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pyspark_kernel.errors import ConfPairError
from pyspark_kernel.masters import DEFAULT_MASTER

CLOSING = "pyspark-shell"  # what pyspark's launcher expects last
PROPERTIES_FILE = "--properties-file"
# spark-submit's flags that take no value (SparkSubmitOptionParser's switches this tool may write).
SWITCHES = frozenset({"--load-spark-defaults", "--verbose", "--supervise"})


@dataclass(frozen=True)
class SubmitArgs:
    """What PYSPARK_SUBMIT_ARGS says, read back: master, ``--conf`` pairs (last one wins), other flags."""

    master: str = DEFAULT_MASTER
    conf: dict[str, str] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)


def build(master: str, flags: Mapping[str, str | None], conf: Mapping[str, str], extra: Sequence[str] = ()) -> str:
    """PYSPARK_SUBMIT_ARGS from a master, spark-submit flags (``--driver-memory`` …; None: left out),
    ``extra`` words as they are (``--properties-file PATH --load-spark-defaults``) and ``--conf`` pairs."""
    words = ["--master", master]
    for flag, value in flags.items():
        if value:
            words += [flag, value]
    return with_conf(shlex.join(words + list(extra) + [CLOSING]), conf)


def parse(text: str) -> SubmitArgs:
    words = shlex.split(text)
    master, conf, flags = DEFAULT_MASTER, {}, {}
    for flag, value in zip(words, words[1:] + [""], strict=False):
        if flag in SWITCHES:
            flags[flag] = ""
        elif flag == "--master":
            master = value
        elif flag == "--conf" and "=" in value:
            key, _, setting = value.partition("=")
            conf[key] = setting
        elif flag.startswith("--") and value not in SWITCHES:
            flags[flag] = value
    return SubmitArgs(master, conf, flags)


def with_properties_file(text: str, path: str, switches: Sequence[str] = ()) -> str:
    """``text`` reading its ``--properties-file`` from ``path`` (spark-submit reads one: the last), with
    ``switches`` added where missing (``--load-spark-defaults``)."""
    words = shlex.split(text)
    closing = [CLOSING] if words[-1:] == [CLOSING] else []
    body = words[: len(words) - len(closing)]
    if PROPERTIES_FILE in body:
        body[body.index(PROPERTIES_FILE) + 1] = path
    else:
        body += [PROPERTIES_FILE, path]
    body += [switch for switch in switches if switch not in body]
    return shlex.join(body + closing)


def with_conf(text: str, conf: Mapping[str, str]) -> str:
    """``text`` with ``--conf`` pairs added before its closing ``pyspark-shell``: later on spark-submit's
    command line, so they win over any earlier setting of the same key."""
    words = shlex.split(text)
    closing = [CLOSING] if words[-1:] == [CLOSING] else []
    added = [word for key, value in conf.items() for word in ("--conf", f"{key}={value}")]
    return shlex.join(words[: len(words) - len(closing)] + added + closing)


def redact(text: str, is_secret: Callable[[str], bool], mask: Callable[[str], str]) -> str:
    """``text`` with the value of every ``--conf`` whose key ``is_secret`` replaced by ``mask(value)``."""
    words = shlex.split(text)
    for index, word in enumerate(words):
        key, sep, value = word.partition("=")
        if index and words[index - 1] == "--conf" and sep and is_secret(key):
            words[index] = f"{key}={mask(value)}"
    return shlex.join(words)


def parse_pairs(pairs: list[str], how: str) -> dict[str, str]:
    """``KEY=VALUE`` strings -> dict, refusing one without ``=`` as spark-submit would.

    ``how`` is how the user writes one (``--conf`` on the command line, ``%spark conf`` in a cell), for
    the message.
    """
    conf: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfPairError(f"{how} {pair!r} is not KEY=VALUE.", f"write it as {how} spark.sql.shuffle.partitions=8")
        conf[key.strip()] = value
    return conf


def java_option(text: str, prefix: str) -> str | None:
    """The value of the driver's ``-XX:…`` option starting with ``prefix`` (e.g. the class-data archive)."""
    options = parse(text).conf.get("spark.driver.extraJavaOptions", "")
    for option in shlex.split(options):
        if option.startswith(prefix):
            return option[len(prefix) :]
    return None
