"""Which settings hold secrets, and where their values live instead of kernel.json and command lines.

One rule for the whole tool (install, show, list, ``%spark conf``, the kernel's messages): a setting whose
key names a secret (``spark.authenticate.secret``, ``*.password``, ``*token*``, ``fs.s3a.*key*``,
``fs.azure.account.key.*`` …) holds one. kernel.json is written 0644 for Jupyter, and whatever reaches
spark-submit's arguments is on the command line of spark-submit, its launcher JVM and the driver JVM,
which every local account's ``ps`` shows. So such values go into a properties file that only its owner
can read (folder 0700, file 0600), kept per user in the Jupyter data dir and never beside the kernelspec,
which may sit in a prefix other accounts read. spark-submit reads it with ``--properties-file``;
a Spark Connect kernel reads its token from it in-process. kernel.json holds only the file's path.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir

from pyspark_kernel.errors import KernelSpecError
from pyspark_kernel.variables import PRIVATE_CONF

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL")
PRIVATE_FILE_VAR = PRIVATE_CONF.name  # kernel.json: the path of this kernelspec's secret file
REMOTE_PREFIX = "pyspark.kernel.remote."  # a Spark Connect URL's secret parameters, in that file
ENV_PREFIX = "pyspark.kernel.env."  # secret environment variables (install --env NAME VALUE), in that file
# Spark 4 reads spark-defaults.conf beside a --properties-file only when told to; Spark 3 never does.
LOAD_DEFAULTS_SINCE = 4


def is_secret(name: str) -> bool:
    """Names like FOO_TOKEN, spark.ssl.keyPassword, fs.s3a.access.key or AWS_SECRET_ACCESS_KEY hold secrets."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def mask(value: str) -> str:
    """Enough of a secret to recognise it, never enough to use it."""
    return value[:2] + "****" if len(value) > 8 else "****"


def split(conf: Mapping[str, str], private_keys: Collection[str] = ()) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, secret) settings of ``conf``, by :func:`is_secret` on each key; ``private_keys`` are secret
    whatever their names (``install --secret-conf``)."""
    hidden = {key for key in conf if is_secret(key) or key in private_keys}
    return {key: value for key, value in conf.items() if key not in hidden}, {key: value for key, value in conf.items() if key in hidden}


def masked(conf: Mapping[str, str]) -> dict[str, str]:
    """``conf`` fit to print: secret values masked."""
    return {key: mask(value) if is_secret(key) else value for key, value in conf.items()}


# -- a Spark Connect URL: sc://host:port/;param=value;... -------------------------------------------------
def split_remote(url: str) -> tuple[str, dict[str, str]]:
    """(the URL without its secret parameters, those parameters): ``;token=…`` stays out of kernel.json."""
    base, sep, params = url.partition("/;")
    if not sep:
        return url, {}
    kept, hidden = [], {}
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if is_secret(name):
            hidden[name] = value
        elif param:
            kept.append(param)
    return (f"{base}/;{';'.join(kept)}" if kept else base), hidden


def join_remote(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` put back: the full URL, built in the kernel process only."""
    if not params:
        return url
    extra = ";".join(f"{name}={value}" for name, value in params.items())
    return f"{url};{extra}" if "/;" in url else f"{url.rstrip('/')}/;{extra}"


def redact_remote(url: str) -> str:
    """``url`` fit to print: each secret parameter's value masked."""
    public, hidden = split_remote(url)
    return join_remote(public, {name: mask(value) for name, value in hidden.items()})


def remote_params(stored: Mapping[str, str]) -> dict[str, str]:
    """The Connect URL's secret parameters among a secret file's entries."""
    return {key[len(REMOTE_PREFIX) :]: value for key, value in stored.items() if key.startswith(REMOTE_PREFIX)}


def load_private_env(environ: dict[str, str] | os._Environ[str]) -> str | None:
    """Put the kernelspec's secret environment variables into the kernel process's own environment
    (readable by its owner and root only), before its JVM is launched and inherits them. Returns what
    went wrong, for the kernel's log, or None."""
    path = environ.get(PRIVATE_FILE_VAR)
    if not path:
        return None
    try:
        stored = read_private(Path(path))
    except OSError as error:
        return f"pyspark-kernel: cannot read this kernelspec's secret file {path} ({error.strerror or error}); it belongs to the account that installed it"
    environ.update({key[len(ENV_PREFIX) :]: value for key, value in stored.items() if key.startswith(ENV_PREFIX)})
    return None


# -- the file ---------------------------------------------------------------------------------------
def store_dir() -> Path:
    """This user's folder of secret files, in the Jupyter data dir (JUPYTER_DATA_DIR moves it)."""
    return Path(jupyter_data_dir()) / "pyspark-kernel" / "secrets"


def store_path(name: str, destination: Path) -> Path:
    """The secret file of kernelspec ``name`` installed at ``destination``: the same name in two prefixes
    keeps two files, so an install into one never changes the other's secrets."""
    digest = hashlib.sha256(str(destination.absolute()).encode()).hexdigest()[:10]
    return store_dir() / f"{name.lower()}-{digest}.properties"


def is_ours(path: Path) -> bool:
    """A secret file this tool keeps: the only files ``remove`` deletes by a path kernel.json names."""
    return path.parent == store_dir() and path.suffix == ".properties"


def escape(text: str, key: bool) -> str:
    """``text`` as java.util.Properties reads it back: backslash escapes; in a key also = : space # !."""
    table = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}
    if key:
        table.update({"=": "\\=", ":": "\\:", " ": "\\ ", "#": "\\#", "!": "\\!"})
    return "".join(table.get(char, char) for char in text)


def properties_text(values: Mapping[str, str]) -> str:
    lines = ["# pyspark-kernel: secret settings of one kernelspec; keep this file 0600"]
    lines += [f"{escape(key, True)}={escape(value, False)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def check_storable(values: Mapping[str, str]) -> None:
    """Refuse a value Spark would change on the way: it trims what it reads from a properties file."""
    for key, value in values.items():
        if value != value.strip():
            raise KernelSpecError(
                f"--conf {key}: the value starts or ends with white space, which Spark drops from a properties file.", "remove the spaces around the value."
            )


def write_private(path: Path, values: Mapping[str, str]) -> None:
    """Write ``values`` to ``path`` whole or not at all: 0600 from its creation, in a 0700 folder."""
    write_private_text(path, properties_text(values))


def write_private_text(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    handle, staged = tempfile.mkstemp(prefix=".staged-", dir=path.parent)  # 0600 from the start
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise


def unescape(text: str) -> str:
    replies = {"n": "\n", "r": "\r", "t": "\t", "f": "\f"}
    out, chars = [], iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append(replies.get(following, following))
        else:
            out.append(char)
    return "".join(out)


def read_private(path: Path) -> dict[str, str]:
    """The settings of a secret file this tool wrote (its escapes; one ``key=value`` a line)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip()[:1] in ("#", "!"):
            continue
        index = 0
        while index < len(line) and line[index] != "=":
            index += 2 if line[index] == "\\" else 1  # an escaped = is part of the key
        values[unescape(line[:index])] = unescape(line[index + 1 :])
    return values


def submit_flags(path: Path | str, spark_version: str) -> list[str]:
    """spark-submit's flags that read ``path``, keeping the user's spark-defaults.conf where Spark can."""
    major = int(spark_version.split(".")[0])
    return ["--properties-file", str(path)] + (["--load-spark-defaults"] if major >= LOAD_DEFAULTS_SINCE else [])
