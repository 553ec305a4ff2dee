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
# Needs KAFKA_BROKERS; KAFKA_BIN (default /opt/kafka/bin) holds kafka-topics.sh,
# kafka-configs.sh and kafka-broker-api-versions.sh; KAFKA_CLIENT_CONFIG, when set, is passed as
# --command-config; otherwise KAFKA_TLS*, KAFKA_SASL_* (the services' variables) build one;
# TOPIC_PREFIX (default empty) is put before every name (tests use it to stay apart).
set -euo pipefail
: "${KAFKA_BROKERS:?}" "${PARTITIONS:?}" "${REPLICATION:?}" "${MIN_ISR:?}"
bin=${KAFKA_BIN:-/opt/kafka/bin}
TOPIC_PREFIX=${TOPIC_PREFIX:-}
auth=()
if [ -z "${KAFKA_CLIENT_CONFIG:-}" ] && { [ "${KAFKA_TLS:-false}" = true ] || [ "${KAFKA_SASL_MECHANISM:-none}" != none ]; }; then
  # The services' connection variables (KAFKA_TLS*, KAFKA_SASL_*, the password from
  # KAFKA_SASL_PASSWORD_FILE) as a Kafka client config, so the Job connects as they do.
  KAFKA_CLIENT_CONFIG=$(mktemp)
  trap 'rm -f "$KAFKA_CLIENT_CONFIG"' EXIT
  proto=PLAINTEXT
  if [ "${KAFKA_TLS:-false}" = true ]; then proto=SSL; fi
  if [ "${KAFKA_SASL_MECHANISM:-none}" != none ]; then
    if [ "$proto" = SSL ]; then proto=SASL_SSL; else proto=SASL_PLAINTEXT; fi
    mech=$(echo "$KAFKA_SASL_MECHANISM" | tr '[:lower:]' '[:upper:]')
    module=org.apache.kafka.common.security.scram.ScramLoginModule
    if [ "$mech" = PLAIN ]; then module=org.apache.kafka.common.security.plain.PlainLoginModule; fi
    password=${KAFKA_SASL_PASSWORD:-}
    if [ -n "${KAFKA_SASL_PASSWORD_FILE:-}" ]; then password=$(cat "$KAFKA_SASL_PASSWORD_FILE"); fi
    printf 'sasl.mechanism=%s\nsasl.jaas.config=%s required username="%s" password="%s";\n' \
      "$mech" "$module" "${KAFKA_SASL_USERNAME:?}" "$password" >>"$KAFKA_CLIENT_CONFIG"
  fi
  echo "security.protocol=$proto" >>"$KAFKA_CLIENT_CONFIG"
  if [ -n "${KAFKA_TLS_CA_FILE:-}" ]; then
    printf 'ssl.truststore.type=PEM\nssl.truststore.location=%s\n' "$KAFKA_TLS_CA_FILE" >>"$KAFKA_CLIENT_CONFIG"
  fi
  if [ -n "${KAFKA_TLS_CERT_FILE:-}" ]; then
    # Kafka's PEM keystore wants the key and its certificate chain in one file.
    ks=$(mktemp); cat "$KAFKA_TLS_KEY_FILE" "$KAFKA_TLS_CERT_FILE" >"$ks"
    printf 'ssl.keystore.type=PEM\nssl.keystore.location=%s\n' "$ks" >>"$KAFKA_CLIENT_CONFIG"
  fi
fi
if [ -n "${KAFKA_CLIENT_CONFIG:-}" ]; then auth=(--command-config "$KAFKA_CLIENT_CONFIG"); fi

# Replication as the services cap it: REPLICATION at the brokers the cluster has, MIN_ISR at
# REPLICATION-1 (at least 1), so one broker may be down without refusing writes. The brokers
# the cluster has are those that answer, or, when more, the most replicas any partition has: a
# broker that is down (a rolling restart) answers nothing but still holds its replicas. Counting
# only those that answer, a run during a restart created topics with one replica less and set
# min.insync.replicas one lower on every existing topic, for good.
brokers=$("$bin/kafka-broker-api-versions.sh" --bootstrap-server "$KAFKA_BROKERS" "${auth[@]}" | grep -c ' (id: ' || true)
described=$("$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BROKERS" "${auth[@]}" --describe) ||
  { echo "topics: kafka-topics.sh --describe failed: cannot tell how many brokers the cluster has" >&2; exit 1; }
replicas=$(awk '{for (i = 1; i < NF; i++) if ($i == "Replicas:") { n = split($(i + 1), r, ","); if (n > m) m = n }} END {print m + 0}' <<<"$described")
if [ "$replicas" -gt "$brokers" ]; then brokers=$replicas; fi
if [ "$brokers" -ge 1 ] && [ "$REPLICATION" -gt "$brokers" ]; then REPLICATION=$brokers; fi
if [ "$MIN_ISR" -gt $((REPLICATION - 1)) ]; then MIN_ISR=$((REPLICATION - 1)); fi
if [ "$MIN_ISR" -lt 1 ]; then MIN_ISR=1; fi
echo "topics: $brokers brokers: replication factor $REPLICATION, min.insync.replicas $MIN_ISR"

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
