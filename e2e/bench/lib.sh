# shellcheck shell=bash
# Sourced by the bench scripts (ingress.sh, system.sh); they set root, the repository's root.

# producer_performance BROKERS TOPIC RECORDS RECORD_SIZE LOG: Kafka's own ProducerPerformance,
# acks=all, flat out, into a new 12-partition TOPIC (the caller deletes it), its output in LOG;
# on failure the log is printed and the script exits.
producer_performance() {
  local brokers=$1 topic=$2 records=$3 size=$4 log=$5 cp
  cp=$("$root/deploy/local/kafka.sh" classpath)
  java -cp "$cp" org.apache.kafka.tools.TopicCommand --bootstrap-server "$brokers" --create --topic "$topic" \
    --partitions 12 --replication-factor 1 >/dev/null
  java -Xmx512m -cp "$cp" -Dlog4j2.configurationFile="$root/deploy/local/kafka/log4j2.properties" \
    org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$records" \
    --record-size "$size" --throughput -1 --producer-props bootstrap.servers="$brokers" acks=all \
    >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
}
