#!/bin/sh
# Healthy when the role's server answers: JupyterLab's /api, the master's or worker's UI, Connect's port.
case "$(cat "${PYSPARK_ROLE_FILE:-/tmp/pyspark-role}" 2>/dev/null || echo notebook)" in
  notebook) url=http://127.0.0.1:8888/api ;;
  master) url=http://127.0.0.1:8080/ ;;
  worker) url=http://127.0.0.1:8081/ ;;
  connect-server) exec python -c "import socket; socket.create_connection(('127.0.0.1', 15002), 3).close()" ;;
  *) exit 0 ;;
esac
exec python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)" "$url"
