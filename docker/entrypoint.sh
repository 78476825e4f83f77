#!/bin/sh
# One image, four roles: docker run IMAGE [ROLE [ARGS...]]
#   notebook (default)    JupyterLab on 0.0.0.0:${JUPYTER_PORT:-8888}; token from JUPYTER_TOKEN, else generated
#                         and printed. With SPARK_MASTER_URL set, the PySpark_Python3 kernel drives that master.
#   singleuser            JupyterHub's single-user server (jupyterhub-singleuser), as a spawner starts it;
#                         chosen by itself when JUPYTERHUB_API_TOKEN is set. The Spark UI link in the
#                         notebook goes through the hub's proxy (jupyter-server-proxy).
#   master                Spark standalone master: RPC on 7077, web UI on 8080.
#   worker [MASTER_URL]   Spark standalone worker of MASTER_URL (default $SPARK_MASTER_URL), web UI on
#                         ${SPARK_WORKER_WEBUI_PORT:-8081};
#                         SPARK_WORKER_CORES and SPARK_WORKER_MEMORY limit what it offers.
#   connect-server        Spark Connect server on 0.0.0.0:15002 (on SPARK_MASTER_URL if set, else local[*]).
# Anything else runs as given (docker run IMAGE bash). ARGS go to the role's program.
# Any uid can run it (docker run --user 1234:100): a uid without a passwd entry gets one, and a HOME
# it cannot write is replaced by the notebook user's group-writable home, or a fresh one in /tmp.
#
# ENTRYPOINT_EXEC=PROGRAM hands every command line to PROGRAM instead of running it, with the same
# environment: the tests check each role's command so (tests/image/test_image_static.py).
set -eu

# A step before the role's program.
run() {
  if [ -n "${ENTRYPOINT_EXEC:-}" ]; then "$ENTRYPOINT_EXEC" "$@"; else "$@"; fi
}

# The role's program replaces this shell, so the signals tini forwards reach it.
become() {
  if [ -n "${ENTRYPOINT_EXEC:-}" ]; then exec "$ENTRYPOINT_EXEC" "$@"; fi
  exec "$@"
}

usage_error() {
  echo "entrypoint: $*" >&2
  exit 2
}

# CurveZMQ on the channels of every kernel whose kernelspec declares it (ours and ipykernel's do), so
# that no other process of the container reads a kernel's outputs from its ports. "auto": a kernel
# whose kernelspec does not declare it still starts, unencrypted (pyspark-kernel check NAME says so).
ENCRYPTION="--KernelManager.transport_encryption=auto"

# Whether the role's arguments set that policy themselves (e.g. =required): traitlets refuses a value
# given twice, so ours is then left out.
sets_encryption() {
  for arg in "$@"; do
    case "$arg" in *KernelManager.transport_encryption*) return 0 ;; esac
  done
  return 1
}

# The JVM class-data archive that the image's `pyspark-kernel install` built (see the Dockerfile).
KERNEL_CACHE="${PYSPARK_KERNEL_CACHE:-/opt/pyspark-kernel/cache}"
NB_HOME="${NB_HOME:-/home/${NB_USER:-jovyan}}"

# A uid with no name breaks Spark's login (Hadoop: "invalid null input: name"): give it one. The
# image makes /etc/passwd writable by group users for this.
name_this_uid() {
  if ! id -un > /dev/null 2>&1 && [ -w /etc/passwd ]; then
    echo "nb$(id -u):x:$(id -u):$(id -g):notebook user:${NB_HOME}:/bin/sh" >> /etc/passwd
  fi
}

# A HOME the user can write: Jupyter keeps its runtime files and user kernelspecs there.
writable_home() {
  if [ -z "${HOME:-}" ] || [ "$HOME" = / ] || [ ! -w "$HOME" ]; then
    if [ -w "$NB_HOME" ]; then HOME="$NB_HOME"; else HOME="/tmp/home-$(id -u)"; mkdir -p "$HOME"; fi
    export HOME
  fi
}

# The folder JupyterLab opens: the work folder (a mounted volume) if this user can write it, else HOME.
notebook_dir() {
  for folder in "${NOTEBOOK_DIR:-}" "$HOME/work" "$NB_HOME/work"; do
    if [ -n "$folder" ] && [ -d "$folder" ] && [ -w "$folder" ]; then echo "$folder"; return; fi
  done
  echo "$HOME"
}

notebook() {
  if [ -n "${SPARK_MASTER_URL:-}" ]; then
    # Cluster use (docker/compose.yaml): a user kernelspec of the same name, which Jupyter finds before
    # the image's, points the kernel at the master. Executors on other containers reach the driver by
    # this container's name, so the driver binds all interfaces (SPARK_LOCAL_IP 0.0.0.0) and
    # advertises that name.
    run env XDG_CACHE_HOME="$KERNEL_CACHE" pyspark-kernel install --user --replace \
      --master "$SPARK_MASTER_URL" --conf "spark.driver.host=${SPARK_DRIVER_HOST:-$(hostname)}" \
      --env SPARK_LOCAL_IP 0.0.0.0 --env SPARK_PUBLIC_DNS localhost
  fi
  if [ -n "${JUPYTER_TOKEN:-}" ]; then
    echo "JupyterLab: token auth with the value of JUPYTER_TOKEN"
  else
    JUPYTER_TOKEN="$(python -c 'import secrets; print(secrets.token_hex(24))')"
    echo "JupyterLab token: $JUPYTER_TOKEN"
    echo "Open http://127.0.0.1:8888/lab?token=$JUPYTER_TOKEN (8888: the host port you published)"
  fi
  # jupyter_server reads the token from the environment: on the command line `docker top` would show it.
  export JUPYTER_TOKEN
  sets_encryption "$@" || set -- "$ENCRYPTION" "$@"
  become jupyter lab --no-browser --ip=0.0.0.0 --port="${JUPYTER_PORT:-8888}" --ServerApp.root_dir="$(notebook_dir)" \
    --MappingKernelManager.default_kernel_name=pyspark_python3 "$@"
}

singleuser() {
  # The hub passes the port, base URL and token in JUPYTERHUB_* variables; the server reads them.
  sets_encryption "$@" || set -- "$ENCRYPTION" "$@"
  become jupyterhub-singleuser --ip=0.0.0.0 --ServerApp.root_dir="$(notebook_dir)" \
    --MappingKernelManager.default_kernel_name=pyspark_python3 "$@"
}

master() {
  # The master advertises the address it binds: with 0.0.0.0 it would tell workers to come back to
  # 0.0.0.0, so it binds this container's name (compose: "master"), which other containers resolve.
  become "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host "${SPARK_MASTER_HOST:-$(hostname)}" --port 7077 --webui-port 8080 "$@"
}

worker() {
  master_url="${1:-${SPARK_MASTER_URL:-}}"
  [ "$#" -gt 0 ] && shift
  case "$master_url" in
    spark://*) ;;
    '') usage_error "worker needs the master's URL: worker spark://HOST:7077 (or set SPARK_MASTER_URL)" ;;
    *) usage_error "worker: '$master_url' is not a standalone master URL; give spark://HOST:7077" ;;
  esac
  set -- "$master_url" "$@"
  if [ -n "${SPARK_WORKER_MEMORY:-}" ]; then set -- --memory "$SPARK_WORKER_MEMORY" "$@"; fi
  if [ -n "${SPARK_WORKER_CORES:-}" ]; then set -- --cores "$SPARK_WORKER_CORES" "$@"; fi
  # Executors run in the work dir; $SPARK_HOME (inside /opt/conda) is not writable by the user.
  become "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
    --webui-port "${SPARK_WORKER_WEBUI_PORT:-8081}" --work-dir "${SPARK_WORKER_DIR:-/tmp/spark-worker}" "$@"
}

connect_server() {
  if [ -n "${SPARK_MASTER_URL:-}" ]; then set -- --master "$SPARK_MASTER_URL" "$@"; fi
  # GraphFrames' Connect plugin, where the image has its jar: Connect clients get GraphFrame too.
  for jar in "$SPARK_HOME"/jars/graphframes-connect-*.jar; do
    if [ -f "$jar" ]; then
      set -- --conf spark.connect.extensions.relation.classes=org.apache.spark.sql.graphframes.GraphFramesConnect "$@"
      break
    fi
  done
  # In the foreground (not sbin/start-connect-server.sh, which daemonizes); spark-submit knows this
  # class and needs no application jar.
  become "$SPARK_HOME/bin/spark-submit" --class org.apache.spark.sql.connect.service.SparkConnectServer \
    --name "Spark Connect server" \
    --conf spark.connect.grpc.binding.address=0.0.0.0 --conf spark.connect.grpc.binding.port=15002 "$@"
}

if [ -n "${JUPYTERHUB_API_TOKEN:-}" ]; then default_role=singleuser; else default_role=notebook; fi
role="${1:-$default_role}"
[ "$#" -gt 0 ] && shift
[ "$role" = notebook ] && [ "$default_role" = singleuser ] && role=singleuser
name_this_uid
writable_home
case "$role" in
  notebook) notebook "$@" ;;
  singleuser) singleuser "$@" ;;
  master) master "$@" ;;
  worker) worker "$@" ;;
  connect-server) connect_server "$@" ;;
  *) become "$role" "$@" ;;
esac
