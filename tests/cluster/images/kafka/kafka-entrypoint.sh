#!/bin/bash
# Entrypoint of the Kafka stand-in image: one Apache Kafka node in KRaft mode, broker and
# controller in one JVM, configured from a few environment variables:
#   KAFKA_ADVERTISED_HOST  host name clients are told to use (required), e.g. the Service's DNS name
#   KAFKA_ADVERTISED_PORT  port clients are told to use (default 9092)
#   KAFKA_DATA_DIR         persistent folder (default /var/lib/kafka): server.properties is
#                          written there on every start, the log segments go in its data/
#   KAFKA_HEAP             JVM heap, -Xms and -Xmx (default 512m)
#   KAFKA_CLUSTER_ID       cluster id used by the first start's format (default: random)
#   KAFKA_LOG_LEVEL        root log level, read by /opt/kafka/config/log4j2.properties (INFO)
#   KAFKA_JVM_OPTS         extra JVM options, split on spaces
# The storage is formatted (kafka.tools.StorageTool format) only when it holds no
# meta.properties yet. With arguments, the entrypoint runs them instead (a shell, a tool).
# Run under tini (the image's ENTRYPOINT): SIGTERM reaches the JVM, whose shutdown hook stops
# the broker cleanly.
set -euo pipefail

if [ $# -gt 0 ]; then
  exec "$@"
fi

kafka_home="${KAFKA_HOME:-/opt/kafka}"
: "${KAFKA_ADVERTISED_HOST:?KAFKA_ADVERTISED_HOST must name the host clients connect to (e.g. kafka.kafka.svc.cluster.local)}"
advertised_port="${KAFKA_ADVERTISED_PORT:-9092}"
data_dir="${KAFKA_DATA_DIR:-/var/lib/kafka}"
heap="${KAFKA_HEAP:-512m}"
log_dirs="$data_dir/data"
config="$data_dir/server.properties"

java_cmd=(java "-Dlog4j2.configurationFile=$kafka_home/config/log4j2.properties"
  -cp "$kafka_home/libs/*")

mkdir -p "$log_dirs"
{
  echo "# Written by kafka-entrypoint.sh on every start; edit the environment, not this file."
  echo "process.roles=broker,controller"
  echo "node.id=1"
  echo "controller.quorum.voters=1@127.0.0.1:9093"
  echo "listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093"
  echo "advertised.listeners=PLAINTEXT://$KAFKA_ADVERTISED_HOST:$advertised_port"
  echo "controller.listener.names=CONTROLLER"
  echo "inter.broker.listener.name=PLAINTEXT"
  echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  echo "log.dirs=$log_dirs"
  echo "num.partitions=3"
  echo "auto.create.topics.enable=false"
  echo "default.replication.factor=1"
  echo "offsets.topic.replication.factor=1"
  echo "offsets.topic.num.partitions=3"
  echo "transaction.state.log.replication.factor=1"
  echo "transaction.state.log.min.isr=1"
  echo "share.coordinator.state.topic.replication.factor=1"
  echo "share.coordinator.state.topic.min.isr=1"
  echo "group.initial.rebalance.delay.ms=0"
  echo "log.retention.hours=168"
} > "$config"

if [ ! -f "$log_dirs/meta.properties" ]; then
  cluster_id="${KAFKA_CLUSTER_ID:-}"
  if [ -z "$cluster_id" ]; then
    # A Kafka cluster id is 16 random bytes in URL-safe base64 without padding.
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  fi
  echo "kafka-entrypoint: formatting $log_dirs (cluster id $cluster_id)"
  "${java_cmd[@]}" kafka.tools.StorageTool format --cluster-id="$cluster_id" --config "$config"
fi

jvm_opts=()
read -r -a jvm_opts <<<"${KAFKA_JVM_OPTS:-}"
echo "kafka-entrypoint: starting Kafka (advertised PLAINTEXT://$KAFKA_ADVERTISED_HOST:$advertised_port, heap $heap)"
exec "${java_cmd[@]:0:1}" "-Xms$heap" "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true "${jvm_opts[@]}" \
  "${java_cmd[@]:1}" kafka.Kafka "$config"
