#!/usr/bin/env bash
# Install what pip cannot: Java for Spark, python3-venv where Debian's Python lacks it, (with
# --browser) Debian's Chromium for the JupyterLab end-to-end test, and (with --two-accounts, as root)
# Debian's python3-zmq for the system Python that the second local account of the two-account tests
# runs (tests/conftest.py): it connects ZMQ sockets to a kernel's ports; (with --hub) npm's
# configurable-http-proxy, JupyterHub's proxy, for the hub test (tests/hub). Uses apt-get, as root or via sudo.
set -euo pipefail

browser=false two_accounts=false hub=false
for flag in "$@"; do
  case "$flag" in
    --browser) browser=true ;;
    --two-accounts) two_accounts=true ;;
    --hub) hub=true ;;
    *) echo "ensure-system.sh: unknown option $flag (known: --browser, --two-accounts, --hub)" >&2; exit 2 ;;
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
hub_proxy=false
if [ "$hub" = true ] && ! command -v configurable-http-proxy >/dev/null 2>&1; then
  hub_proxy=true
  command -v npm >/dev/null 2>&1 || need+=(npm)   # Debian's npm brings Node.js
fi
install_hub_proxy() {
  if [ "$hub_proxy" = true ]; then
    echo "Installing configurable-http-proxy with npm" >&2
    $sudo npm install -g --no-fund --no-audit configurable-http-proxy >/dev/null
  fi
}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#need[@]} -eq 0 ]; then
  install_hub_proxy
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing: ${need[*]}. Install them with your system's package manager (Java 17 or 21 for Spark 4)." >&2
  exit 1
fi
echo "Installing ${need[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
install_hub_proxy
