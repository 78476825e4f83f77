#!/bin/sh
# Healthy when the server of this container's role answers: JupyterLab's /api, the master's or the
# worker's web UI, the Connect server's port; any other command counts as healthy. The role is the
# word after entrypoint.sh in PID 1's command line (tini -g -- /usr/local/bin/entrypoint.sh ROLE ...),
# so nothing has to be written at start and a read-only root file system is fine.
role="$(tr '\0' '\n' < "${HEALTHCHECK_CMDLINE:-/proc/1/cmdline}" | sed -n '/entrypoint\.sh$/{n;p;q;}')"
case "${role:-notebook}" in
  notebook) target=http://127.0.0.1:8888/api ;;
  master) target=http://127.0.0.1:8080/ ;;
  worker) target=http://127.0.0.1:8081/ ;;
  connect-server) target=127.0.0.1:15002 ;;
  *) exit 0 ;;
esac
exec python -c '
import socket, sys, urllib.request
target = sys.argv[1]
try:
    if target.startswith("http"):
        urllib.request.urlopen(target, timeout=3).close()
    else:
        host, port = target.rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=3).close()
except Exception as error:
    sys.exit(f"unhealthy: {target}: {error}")
print(f"healthy: {target}")
' "$target"
