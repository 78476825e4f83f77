#!/bin/sh
# Healthy when the server of this container's role answers where it really listens: JupyterLab's or the
# single-user server's /api under its base URL, the master's or the worker's web UI, the Connect
# server's port; any other command counts as healthy. The role and its arguments are read from PID 1's
# command line (tini -g -- /usr/local/bin/entrypoint.sh ROLE ARGS...), its ports and base URL from those
# arguments and PID 1's environment (JUPYTER_PORT, JupyterHub's JUPYTERHUB_SERVICE_URL), so nothing
# has to be written at start and a read-only root file system is fine.
exec python - "${HEALTHCHECK_CMDLINE:-/proc/1/cmdline}" "${HEALTHCHECK_ENVIRON:-/proc/1/environ}" <<'EOF'
import socket, sys, urllib.parse, urllib.request

def read(path):
    with open(path, "rb") as source:
        return [word.decode(errors="replace") for word in source.read().split(b"\0") if word]

words = read(sys.argv[1])
environ = dict(item.partition("=")[::2] for item in read(sys.argv[2]))
after = words[next((i + 1 for i, word in enumerate(words) if word.endswith("entrypoint.sh")), len(words)):]
role, args = (after[0], after[1:]) if after else ("notebook", [])
if role == "notebook" and environ.get("JUPYTERHUB_API_TOKEN"):
    role = "singleuser"  # as the entrypoint decides: a spawner ran the image's own command

def option(names, default):
    """The last value given for any of ``names`` (--name=value or --name value), else ``default``."""
    value = default
    for index, word in enumerate(args):
        for name in names:
            if word.startswith(name + "="):
                value = word.split("=", 1)[1]
            elif word == name and index + 1 < len(args):
                value = args[index + 1]
    return value

if role in ("notebook", "singleuser"):
    service = urllib.parse.urlparse(environ.get("JUPYTERHUB_SERVICE_URL", "")) if role == "singleuser" else None
    port = option(("--port", "--ServerApp.port"), str(service.port) if service and service.port else environ.get("JUPYTER_PORT", "8888"))
    base = option(("--ServerApp.base_url",), service.path if service and service.path else "/")
    target = f"http://127.0.0.1:{port}/{base.strip('/') + '/' if base.strip('/') else ''}api"
elif role == "master":
    target = f"http://127.0.0.1:{option(('--webui-port',), '8080')}/"
elif role == "worker":
    target = f"http://127.0.0.1:{option(('--webui-port',), environ.get('SPARK_WORKER_WEBUI_PORT', '8081'))}/"
elif role == "connect-server":
    port = next((word.split("=", 1)[1] for word in args if word.startswith("spark.connect.grpc.binding.port=")), "15002")
    target = f"127.0.0.1:{port}"
else:
    sys.exit(0)
try:
    if target.startswith("http"):
        urllib.request.urlopen(target, timeout=3).close()
    else:
        host, port = target.rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=3).close()
except Exception as error:
    sys.exit(f"unhealthy: {target}: {error}")
print(f"healthy: {target}")
EOF
