#!/bin/sh
# check-build-args.sh: refuse unusable build args in a second, before any slow layer runs.
# The Dockerfile runs it first in each environment stage, with the build args in the environment.
set -eu

fail() {
  echo "docker build: $*" >&2
  exit 2
}

case "${GRAPHFRAMES_JARS:-fetch}" in
  fetch)
    for name in GRAPHFRAMES_SHA256 GRAPHFRAMES_GRAPHX_SHA256 GRAPHFRAMES_CONNECT_SHA256; do
      eval "value=\${$name:-}"
      case "$value" in
        '') fail "$name is empty. Fix: --build-arg $name=<sha256 of the jar> (docs/docker.md says where it comes from), or --build-arg GRAPHFRAMES_JARS=none for an image without GraphFrames' jars." ;;
        *[!0-9a-f]*) fail "$name='$value' is not a lower-case hex sha256. Fix: copy it from the .sha256 file beside the jar on Maven Central." ;;
      esac
      [ "${#value}" -eq 64 ] || fail "$name has ${#value} characters; a sha256 has 64."
    done
    ;;
  none) ;;
  *) fail "GRAPHFRAMES_JARS='${GRAPHFRAMES_JARS}' is neither fetch nor none." ;;
esac

for name in PYTHON_VERSION JAVA_VERSION SPARK_VERSION GRAPHFRAMES_VERSION; do
  eval "value=\${$name:-}"
  case "$value" in
    '' | *[!0-9.]*) fail "$name='$value' is not a version (digits and dots)." ;;
  esac
done
