#!/bin/sh
# One image, four roles: docker run IMAGE [ROLE [ARGS...]]
#   notebook (default)    JupyterLab on 0.0.0.0:8888; token from JUPYTER_TOKEN, else generated and printed.
#                         With SPARK_MASTER_URL set, the PySpark_Python3 kernel drives that master.
#   master                Spark standalone master: RPC on 7077, web UI on 8080.
#   worker [MASTER_URL]   Spark standalone worker of MASTER_URL (default $SPARK_MASTER_URL), web UI on 8081;
#                         SPARK_WORKER_CORES and SPARK_WORKER_MEMORY limit what it offers.
#   connect-server        Spark Connect server on 0.0.0.0:15002 (on SPARK_MASTER_URL if set, else local[*]).
# Anything else runs as given (docker run IMAGE bash). ARGS go to the role's program.
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

# The JVM class-data archive that the image's `pyspark-kernel install` built (see the Dockerfile).
KERNEL_CACHE="${PYSPARK_KERNEL_CACHE:-/opt/pyspark-kernel/cache}"

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
  become jupyter lab --no-browser --ip=0.0.0.0 --port=8888 --ServerApp.root_dir="$HOME/work" \
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
    --webui-port 8081 --work-dir "${SPARK_WORKER_DIR:-/tmp/spark-worker}" "$@"
}

connect_server() {
  if [ -n "${SPARK_MASTER_URL:-}" ]; then set -- --master "$SPARK_MASTER_URL" "$@"; fi
  # In the foreground (not sbin/start-connect-server.sh, which daemonizes); spark-submit knows this
  # class and needs no application jar.
  become "$SPARK_HOME/bin/spark-submit" --class org.apache.spark.sql.connect.service.SparkConnectServer \
    --name "Spark Connect server" \
    --conf spark.connect.grpc.binding.address=0.0.0.0 --conf spark.connect.grpc.binding.port=15002 "$@"
}

role="${1:-notebook}"
[ "$#" -gt 0 ] && shift
case "$role" in
  notebook) notebook "$@" ;;
  master) master "$@" ;;
  worker) worker "$@" ;;
  connect-server) connect_server "$@" ;;
  *) become "$role" "$@" ;;
esac
