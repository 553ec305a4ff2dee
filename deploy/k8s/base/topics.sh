#!/usr/bin/env bash
# Creates the pipeline's topics and converges their settings. Run by the topic Job
# (topics-job.yaml) from the ConfigMap kustomization.yaml generates out of this file and the
# PARTITIONS / REPLICATION / MIN_ISR literals beside it: any change to them gives the ConfigMap,
# and so the Job, a new name, and the next apply runs it again.
#
# Idempotent: a topic that exists is not re-created (--if-not-exists); its settings are set again
# (kafka-configs --alter), so a changed retention reaches existing topics too. Partitions are never
# changed on an existing topic: adding some would move keys to other partitions and break
# per-order order; a topic with fewer than PARTITIONS is reported.
#
# Needs KAFKA_BROKERS; KAFKA_BIN (default /opt/kafka/bin) holds kafka-topics.sh and
# kafka-configs.sh; KAFKA_CLIENT_CONFIG, when set, is passed as --command-config (TLS / SASL);
# TOPIC_PREFIX (default empty) is put before every name (tests use it to stay apart).
set -euo pipefail
: "${KAFKA_BROKERS:?}" "${PARTITIONS:?}" "${REPLICATION:?}" "${MIN_ISR:?}"
bin=${KAFKA_BIN:-/opt/kafka/bin}
TOPIC_PREFIX=${TOPIC_PREFIX:-}
auth=()
if [ -n "${KAFKA_CLIENT_CONFIG:-}" ]; then auth=(--command-config "$KAFKA_CLIENT_CONFIG"); fi

# create TOPIC RETENTION_MS [MAX_MESSAGE_BYTES]
create() {
  local topic=$TOPIC_PREFIX$1 settings="retention.ms=$2,min.insync.replicas=$MIN_ISR,cleanup.policy=delete"
  if [ -n "${3:-}" ]; then settings="$settings,max.message.bytes=$3"; fi
  local configs=()
  IFS=, read -ra kv <<<"$settings"
  for c in "${kv[@]}"; do configs+=(--config "$c"); done
  "$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BROKERS" "${auth[@]}" --create --if-not-exists \
    --topic "$topic" --partitions "$PARTITIONS" --replication-factor "$REPLICATION" "${configs[@]}"
  "$bin/kafka-configs.sh" --bootstrap-server "$KAFKA_BROKERS" "${auth[@]}" --alter \
    --entity-type topics --entity-name "$topic" --add-config "$settings"
}

create callbacks.raw.v1      604800000  2097152
create orders.status.v1      604800000
create orders.delivery.v1    604800000
create orders.lifecycle.v1   604800000
create orders.refund.v1      604800000
create callbacks.dlq.v1      2592000000 2097152
create orders.status.dlq.v1  2592000000
create dangdang.results.v1   2592000000
# Partitions are never changed here (see above); report topics that have fewer than PARTITIONS.
"$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BROKERS" "${auth[@]}" --describe \
  --topic "${TOPIC_PREFIX//./\\.}(callbacks|orders|dangdang)\\..*" --exclude-internal |
  awk -v want="$PARTITIONS" '/PartitionCount:/ { for (i = 1; i < NF; i++) { if ($i == "Topic:") t = $(i+1); if ($i == "PartitionCount:") n = $(i+1) }
    if (n + 0 < want + 0) printf "topics: %s has %s partitions, fewer than PARTITIONS=%s; left as is (adding partitions moves keys)\n", t, n, want > "/dev/stderr" }'
echo "topics: done"
