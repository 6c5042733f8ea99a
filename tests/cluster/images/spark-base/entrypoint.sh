#!/bin/bash
# Container entrypoint of the Spark stand-in image (/opt/entrypoint.sh), written from the
# documented Spark-on-Kubernetes contract ("Running Spark on Kubernetes"; the SPARK_* variables
# that Spark's Kubernetes backend sets on the pods it creates):
#   driver ARGS...    spark-submit in client mode inside the driver pod, bound to
#                     $SPARK_DRIVER_BIND_ADDRESS (the pod IP);
#   executor          a KubernetesExecutorBackend JVM configured from SPARK_EXECUTOR_*,
#                     SPARK_DRIVER_URL, SPARK_APPLICATION_ID, SPARK_RESOURCE_PROFILE_ID and the
#                     SPARK_JAVA_OPT_<n> options (in the order of n);
#   anything else     run as given.
# Every command runs under `tini -s` (it reaps orphans and forwards signals), as the UID the
# container was started with.
set -euo pipefail

spark_home="${SPARK_HOME:-/opt/spark}"
java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"

# The executor's classpath: its configuration folders first (so that files placed there win),
# then Spark's jars, extra jars from the pod spec, and the working directory.
executor_classpath() {
  local cp="$spark_home/jars/*"
  [ -n "${SPARK_CLASSPATH:-}" ] && cp="$SPARK_CLASSPATH:$cp"
  [ -n "${SPARK_EXTRA_CLASSPATH:-}" ] && cp="$cp:$SPARK_EXTRA_CLASSPATH"
  [ -n "${HADOOP_CONF_DIR:-}" ] && cp="$HADOOP_CONF_DIR:$cp"
  cp="${SPARK_CONF_DIR:-$spark_home/conf}:$cp"
  [ -n "${SPARK_DIST_CLASSPATH:-}" ] && cp="$cp:$SPARK_DIST_CLASSPATH"
  printf '%s:%s' "$cp" "$PWD"
}

# SPARK_JAVA_OPT_0, SPARK_JAVA_OPT_1, ... sorted by their number, not by name (10 after 9).
executor_java_opts=()
while IFS= read -r name; do
  [ -n "$name" ] && executor_java_opts+=("${!name}")
done < <(compgen -e | sed -n 's/^SPARK_JAVA_OPT_\([0-9][0-9]*\)$/\1 &/p' | sort -n | cut -d' ' -f2)

require() {
  local name
  for name in "$@"; do
    [ -n "${!name:-}" ] || { echo "entrypoint: $name is not set (the Spark Kubernetes backend sets it)" >&2; exit 1; }
  done
}

case "${1:-}" in
  driver)
    shift
    require SPARK_DRIVER_BIND_ADDRESS
    exec tini -s -- "$spark_home/bin/spark-submit" \
      --deploy-mode client \
      --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS" \
      "$@"
    ;;
  executor)
    shift
    require SPARK_EXECUTOR_MEMORY SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES \
      SPARK_APPLICATION_ID SPARK_EXECUTOR_POD_IP SPARK_RESOURCE_PROFILE_ID SPARK_EXECUTOR_POD_NAME
    exec tini -s -- "$java_bin" \
      "${executor_java_opts[@]}" \
      "-Xms$SPARK_EXECUTOR_MEMORY" "-Xmx$SPARK_EXECUTOR_MEMORY" \
      -cp "$(executor_classpath)" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" \
      --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" \
      --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" \
      --resourceProfileId "$SPARK_RESOURCE_PROFILE_ID" \
      --podName "$SPARK_EXECUTOR_POD_NAME"
    ;;
  "")
    echo "usage: /opt/entrypoint.sh driver SPARK-SUBMIT-ARGS... | executor | COMMAND [ARGS...]" >&2
    exit 2
    ;;
  *)
    exec tini -s -- "$@"
    ;;
esac
