#!/usr/bin/env bash
# Install what pip cannot: Java for Spark, python3-venv where Debian's Python lacks it, (with
# --browser) Debian's Chromium for the JupyterLab end-to-end test, and (with --two-accounts, as root)
# Debian's python3-zmq for the system Python that the second local account of the two-account tests
# runs (tests/conftest.py): it connects ZMQ sockets to a kernel's ports. Uses apt-get, as root or via sudo.
set -euo pipefail

browser=false two_accounts=false
for flag in "$@"; do
  case "$flag" in
    --browser) browser=true ;;
    --two-accounts) two_accounts=true ;;
    *) echo "ensure-system.sh: unknown option $flag (known: --browser, --two-accounts)" >&2; exit 2 ;;
  esac
done

need=()
if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
  need+=(default-jre-headless)   # Java 17 on Debian 12, 21 on Debian 13: both run Spark 4
fi
if ! "${PYTHON:-python3}" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need+=(python3-venv)
fi
if [ "$browser" = true ] && ! command -v chromium >/dev/null 2>&1; then
  need+=(chromium)
fi
# Only root runs the two-account tests (they make the account); they skip where this is missing.
if [ "$two_accounts" = true ] && [ "$(id -u)" -eq 0 ] && [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import zmq' >/dev/null 2>&1; then
  need+=(python3-zmq)
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
