#!/bin/sh
# One image, four roles: notebook (default), master, worker MASTER_URL, connect-server; anything else
# runs as given. DRY_RUN=1 prints the command instead of running it (the tests check each role so).
set -eu

setup() {  # a step before the role's command; printed, not run, under DRY_RUN
  if [ -n "${DRY_RUN:-}" ]; then printf '%s\n' "$*"; else "$@" >/dev/null; fi
}

run() {
  if [ -n "${DRY_RUN:-}" ]; then
    printf '%s\n' "$*"
    exit 0
  fi
  exec "$@"
}

role="${1:-notebook}"
[ "$#" -gt 0 ] && shift
printf '%s\n' "$role" > "${PYSPARK_ROLE_FILE:-/tmp/pyspark-role}" 2>/dev/null || true

case "$role" in
  notebook)
    if [ -n "${SPARK_MASTER_URL:-}" ]; then
      # Cluster use (compose): a user kernelspec (found before the image's) points at the master; executors reach the driver by this
      # container's name, so the driver binds all interfaces instead of loopback.
      setup pyspark-kernel install --user --replace --master "$SPARK_MASTER_URL" \
        --conf "spark.driver.host=${SPARK_DRIVER_HOST:-$(hostname)}" --env SPARK_LOCAL_IP 0.0.0.0
    fi
    if [ -n "${JUPYTER_TOKEN:-}" ]; then
      token="$JUPYTER_TOKEN"
      echo "JupyterLab token: the value of JUPYTER_TOKEN"
    else
      token="$(python -c 'import secrets; print(secrets.token_hex(24))')"
      echo "JupyterLab token: $token   (open http://127.0.0.1:8888/lab?token=$token)"
    fi
    run jupyter lab --no-browser --ip=0.0.0.0 --port=8888 --ServerApp.root_dir="$HOME/work" \
      --IdentityProvider.token="$token" --MappingKernelManager.default_kernel_name=pyspark_python3 "$@"
    ;;
  master)
    run "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
      --host 0.0.0.0 --port 7077 --webui-port 8080 "$@"
    ;;
  worker)
    master_url="${1:-${SPARK_MASTER_URL:-}}"
    if [ -z "$master_url" ]; then
      echo "worker needs the master's URL: worker spark://HOST:7077 (or SPARK_MASTER_URL)" >&2
      exit 2
    fi
    [ "$#" -gt 0 ] && shift
    run "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --cores "${SPARK_WORKER_CORES:-2}" --memory "${SPARK_WORKER_MEMORY:-2g}" --webui-port 8081 "$master_url" "$@"
    ;;
  connect-server)
    run "$SPARK_HOME/bin/spark-submit" --class org.apache.spark.sql.connect.service.SparkConnectServer \
      --conf spark.connect.grpc.binding.address=0.0.0.0 --conf spark.connect.grpc.binding.port=15002 \
      "$@" "$(ls "$SPARK_HOME"/jars/spark-connect_*.jar)"
    ;;
  *)
    run "$role" "$@"
    ;;
esac
