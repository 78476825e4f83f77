"""fetch-jar.py GROUP:ARTIFACT:VERSION SHA256 DEST_DIR: one jar from a Maven repository, verified.

The image build fetches the GraphFrames jars with it into $SPARK_HOME/jars. The sha256 is required
and checked before the jar is put in place: an empty or wrong checksum stops the build with a message
that names the jar, its URL and the fix. MAVEN_REPOSITORY overrides the repository (a mirror).
Python only (the image has no curl or wget), standard library only.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import urllib.request
from pathlib import Path

DEFAULT_REPOSITORY = "https://repo1.maven.org/maven2"
USAGE = "usage: fetch-jar.py GROUP:ARTIFACT:VERSION SHA256 DEST_DIR"


def jar_url(coordinate: str, repository: str) -> tuple[str, str]:
    """The jar's file name and URL in a Maven repository layout."""
    group, artifact, version = coordinate.split(":")
    name = f"{artifact}-{version}.jar"
    return name, f"{repository.rstrip('/')}/{group.replace('.', '/')}/{artifact}/{version}/{name}"


def fetch(coordinate: str, expected_sha256: str, dest_dir: Path, repository: str) -> Path:
    name, url = jar_url(coordinate, repository)
    expected = expected_sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise SystemExit(
            f"fetch-jar: no usable sha256 for {name} (got {expected_sha256!r}).\n"
            f"Fix: take it once from a machine you trust, `curl -fsSL {url} | sha256sum`, and pass it as the build arg "
            "(make image GRAPHFRAMES_SHA256=… GRAPHFRAMES_GRAPHX_SHA256=…)."
        )
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest_dir, suffix=".partial", delete=False) as partial:
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                for block in iter(lambda: response.read(1 << 16), b""):
                    digest.update(block)
                    partial.write(block)
        except OSError as error:
            os.unlink(partial.name)
            raise SystemExit(f"fetch-jar: could not download {url}: {error}.\nFix: check the version, or set MAVEN_REPOSITORY to a reachable mirror.") from None
    if digest.hexdigest() != expected:
        os.unlink(partial.name)
        raise SystemExit(
            f"fetch-jar: {name} from {url} has sha256 {digest.hexdigest()}, not the {expected} given.\n"
            "Fix: check the checksum you passed (a new version has a new checksum); the jar was not installed."
        )
    target = dest_dir / name
    os.chmod(partial.name, 0o644)
    os.replace(partial.name, target)
    print(f"fetch-jar: {target} (sha256 {expected}, verified)")
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0].count(":") != 2:
        print(USAGE, file=sys.stderr)
        return 2
    fetch(argv[0], argv[1], Path(argv[2]), os.environ.get("MAVEN_REPOSITORY") or DEFAULT_REPOSITORY)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
