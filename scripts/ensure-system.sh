#!/usr/bin/env bash
# Install what pip cannot: Java for Spark, python3-venv where Debian's Python lacks it, and (with
# --browser) Debian's Chromium for the JupyterLab end-to-end test. Uses apt-get, as root or via sudo.
set -euo pipefail

need=()
if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
  need+=(default-jre-headless)   # Java 17 on Debian 12, 21 on Debian 13: both run Spark 4
fi
if ! "${PYTHON:-python3}" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need+=(python3-venv)
fi
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
  need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing: ${need[*]}. Install them with your system's package manager (Java 17 or 21 for Spark 4)." >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing ${need[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
