#!/usr/bin/env bash
# make image-test: build the image and test it live, on a machine that may have no Docker engine and
# reach no image registry or conda channel (these machines: only PyPI and Debian's archive).
#   1. an engine: where none answers, Debian's docker.io is installed (apt-get) and a plain dockerd is
#      started in the background; its PID is recorded and it is stopped at the end;
#   2. a base image made locally, once: debootstrap --variant=minbase bookworm, docker import;
#   3. the image, with its Debian environment stage on that base (ENVIRONMENT=debian) and without
#      GraphFrames' jars (Maven Central is out of reach), trusting this machine's CA bundle for the build;
#   4. tests/image against it (PYSPARK_KERNEL_IMAGE).
# IMAGE_TEST_SKIP=1 skips it all, saying so (not allowed under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
STATE="${IMAGE_TEST_STATE:-.cache/image-test}"
BASE="${IMAGE_TEST_BASE:-local/debian:bookworm}"
IMAGE="${IMAGE_TEST_IMAGE:-pyspark-kernel:test}"
mkdir -p "$STATE"

say() { echo "image-test: $*" >&2; }

if [ -n "${IMAGE_TEST_SKIP:-}" ]; then
  [ "${CI:-}" = true ] && { say "IMAGE_TEST_SKIP is not allowed in CI"; exit 2; }
  say "skipped (IMAGE_TEST_SKIP is set)"
  exit 0
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo > /dev/null; then sudo -n "$@"; else
    say "needs root for: $* (run as root, or start a Docker engine yourself)"; exit 2; fi
}

apt_updated=""
apt_install() {
  say "installing $* (Debian packages)"
  [ -n "$apt_updated" ] || { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q > /dev/null; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" > /dev/null
}

# -- 1. an engine ---------------------------------------------------------------------------------
dockerd_pid=""
stop_engine() {
  if [ -n "$dockerd_pid" ]; then
    say "stopping the dockerd this run started (pid $dockerd_pid)"
    as_root kill "$dockerd_pid" 2> /dev/null || true
    for _ in $(seq 60); do kill -0 "$dockerd_pid" 2> /dev/null || break; sleep 0.5; done
    if kill -0 "$dockerd_pid" 2> /dev/null; then say "dockerd (pid $dockerd_pid) did not stop in 30 s"; exit 1; fi
    rm -f "$STATE/dockerd.pid"
  fi
}
trap stop_engine EXIT

engine_answers() { docker info > /dev/null 2>&1; }
if ! engine_answers; then
  command -v dockerd > /dev/null || apt_install docker.io
  say "starting dockerd in the background (log: $STATE/dockerd.log)"
  # Started directly (not through a shell function), so that $! is dockerd itself (or sudo, which
  # passes the signal on) and stopping it at the end stops the engine.
  if [ "$(id -u)" = 0 ]; then dockerd > "$STATE/dockerd.log" 2>&1 & else sudo -n dockerd > "$STATE/dockerd.log" 2>&1 & fi
  dockerd_pid=$!
  echo "$dockerd_pid" > "$STATE/dockerd.pid"
  for _ in $(seq 60); do engine_answers && break; sleep 1; done
  engine_answers || { say "dockerd did not answer within 60 s; see $STATE/dockerd.log"; exit 1; }
fi

# docker-compose (Debian's, v1) validates docker/compose.yaml where the compose v2 plugin is missing.
if ! docker compose version > /dev/null 2>&1 && ! command -v docker-compose > /dev/null; then
  apt_install docker-compose
fi

# A CLI that builds with BuildKit: one with buildx, else Debian's docker.io CLI (BuildKit built in).
DOCKER=docker
if ! docker buildx version > /dev/null 2>&1 && [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; fi

# -- 2. the local base, once ----------------------------------------------------------------------
if ! docker image inspect "$BASE" > /dev/null 2>&1; then
  command -v debootstrap > /dev/null || apt_install debootstrap
  if [ ! -s "$STATE/bookworm.tar" ]; then
    say "making the base image with debootstrap (once, about a minute)"
    root="$(mktemp -d)"
    as_root debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian > "$STATE/debootstrap.log"
    as_root tar -C "$root" -cf "$STATE/bookworm.tar" .
    as_root rm -rf "$root"
  fi
  docker import "$STATE/bookworm.tar" "$BASE" > /dev/null
fi

# -- 3. the image -----------------------------------------------------------------------------------
ca_bundle="${PIP_CERT:-}"
[ -z "$ca_bundle" ] && [ -s /etc/ssl/certs/ca-certificates.crt ] && ca_bundle=/etc/ssl/certs/ca-certificates.crt
started=$(date +%s)
say "building $IMAGE (ENVIRONMENT=debian on $BASE; log: $STATE/build.log)"
if ! make --no-print-directory image DOCKER="$DOCKER" IMAGE="$IMAGE" ENVIRONMENT=debian DEBIAN_BASE="$BASE" \
    GRAPHFRAMES_JARS=none CA_BUNDLE="$ca_bundle" > "$STATE/build.log" 2>&1; then
  tail -40 "$STATE/build.log" >&2
  say "the build failed; the whole log is $STATE/build.log"
  exit 1
fi
say "built in $(( $(date +%s) - started )) s"

# -- 4. the tests -----------------------------------------------------------------------------------
PYSPARK_KERNEL_IMAGE="$IMAGE" "$PY" -m pytest -q -rs tests/image
