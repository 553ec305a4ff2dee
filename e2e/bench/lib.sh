# shellcheck shell=bash
# Sourced by the bench scripts; ingress.sh and system.sh set root (the repository's root) first.

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

# wait_http URL: wait up to about 20 s for URL to answer 2xx; otherwise say so and exit.
wait_http() {
  for _ in $(seq 1 200); do curl -fs -o /dev/null -m 1 "$1" && return 0; sleep 0.1; done
  echo "bench: $1 never answered" >&2; exit 1
}

# The side-by-side harness's Eleme app and secret: its gen signs the bodies with them, and the
# servers under its load verify with them.
harness_app=62933118 harness_secret=bench-eleme-secret

# harness_bodies PEERS OUT: the harness's pre-signed Eleme pushes (PEERS/side-by-side/gen, 20,000
# of them) in OUT/bodies.txt, for its bodies.lua.
harness_bodies() {
  (cd "$1/side-by-side" && go build -o "$2/gen" ./gen)
  "$2/gen" -n 20000 -secret "$harness_secret" -app "$harness_app" > "$2/bodies.txt"
}

# kill_pids_on_exit: an empty pids array whose processes the script kills when it exits, however
# it exits (start_harness_ingress adds to it).
kill_pids_on_exit() {
  pids=()
  trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done' EXIT
}

# ticks PID: the CPU time (user + system) the process has used so far, in clock ticks (tck a
# second); fails when the process is gone.
tck=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# sys_ticks PID: the part of it spent in the kernel (system time), in clock ticks.
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }

# start_harness_ingress BIN BROKERS TOPIC HTTP_PORT OPS_PORT LOG [ENV]: the ingress as the
# harness loads it (Eleme only, replication factor 1, warn logs, ENV as extra VAR=value words)
# in the background, its pid in harness_pid and added to the caller's pids array (which the
# caller's EXIT trap kills) before the wait; returns once it is ready (HARNESS_PROBE=healthz:
# once it serves, for an ingress that is not meant to be ready).
start_harness_ingress() {
  # shellcheck disable=SC2086 # ENV is a list of VAR=value words
  env ${7:-} KAFKA_BROKERS="$2" HTTP_ADDR="127.0.0.1:$4" OPS_ADDR="127.0.0.1:$5" TOPIC_RAW="$3" \
    TOPIC_REPLICATION_FACTOR=1 TOPIC_MIN_INSYNC_REPLICAS=1 ELEME_SECRETS="$harness_app=$harness_secret" LOG_LEVEL=warn \
    "$1" > "$6" 2>&1 &
  harness_pid=$!; pids+=("$harness_pid")
  wait_http "http://127.0.0.1:$5/${HARNESS_PROBE:-readyz}"
}
