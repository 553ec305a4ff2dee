#!/usr/bin/env bash
# Runs a three-broker Apache Kafka 4.x cluster in KRaft mode as local processes on 127.0.0.1, for
# tests that lose a broker. Every node is a combined broker+controller (deploy/local/kafka.sh with
# KAFKA_NODE_ID 1..3) and the three form a static 3-voter controller quorum, so the cluster keeps
# a controller and keeps accepting acks=all writes with any one node lost (two of three voters;
# min.insync.replicas=2 of replication factor 3). Topics default to replication factor 3 (the
# offsets and transaction topics too), min.insync.replicas=2. Heaps are small (KAFKA_HEAP,
# default "-Xms256m -Xmx512m") so the three fit a 2-core machine.
#
# Ports, from PORT (KAFKA_CLUSTER_PORT, default 39192): node N (1..3) has PLAINTEXT on
# PORT+4(N-1), its controller on +1, SASL_SSL on +2 and mutual TLS on +3 (as kafka.sh), e.g. node 1
# PORT..PORT+3, node 2 PORT+4..PORT+7, node 3 PORT+8..PORT+11. Inter-broker and controller
# traffic is PLAINTEXT.
#
#   deploy/local/kafka-cluster.sh start          format fresh storage for all three and start them; waits for all
#   deploy/local/kafka-cluster.sh stop           stop all three
#   deploy/local/kafka-cluster.sh kill9 N        kill -9 node N (its data stays)
#   deploy/local/kafka-cluster.sh stop-one N     stop node N gracefully (SIGTERM; controlled shutdown)
#   deploy/local/kafka-cluster.sh restart N      start node N again on its data; waits until it answers
#   deploy/local/kafka-cluster.sh sigstop N | sigcont N   freeze / resume node N
#   deploy/local/kafka-cluster.sh leader-counts  "node count" lines: partition leaderships per node
#   deploy/local/kafka-cluster.sh controller     the node id of the active controller (quorum leader)
#   deploy/local/kafka-cluster.sh brokers        the PLAINTEXT bootstrap list
#   deploy/local/kafka-cluster.sh sasl-brokers   the SASL_SSL bootstrap list
#
# Environment: KAFKA_CLUSTER_RUN_DIR (default .run/kafka-cluster-$PORT), KAFKA_CERT_DIR (default: a
# fresh one made by certs.sh in the run dir), KAFKA_SASL_USERNAME (default orderpipe),
# KAFKA_SASL_PASSWORD (default random, kept in the run dir's sasl-password).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${KAFKA_CLUSTER_PORT:-39192}
run=${KAFKA_CLUSTER_RUN_DIR:-$root/.run/kafka-cluster-$port}
export KAFKA_HEAP=${KAFKA_HEAP:--Xms256m -Xmx512m}

node_port() { echo $((port + 4 * ($1 - 1))); }
list() { # list OFFSET: the three nodes' ports PORT+4(N-1)+OFFSET, comma-separated
  echo "127.0.0.1:$(($(node_port 1) + $1)),127.0.0.1:$(($(node_port 2) + $1)),127.0.0.1:$(($(node_port 3) + $1))"
}

node() { # node N COMMAND: kafka.sh COMMAND for node N
  local n=$1 p
  p=$(node_port "$n")
  KAFKA_PORT=$p KAFKA_NODE_ID=$n KAFKA_RUN_DIR="$run/node-$n" \
    KAFKA_QUORUM_VOTERS="1@127.0.0.1:$(($(node_port 1) + 1)),2@127.0.0.1:$(($(node_port 2) + 1)),3@127.0.0.1:$(($(node_port 3) + 1))" \
    KAFKA_REPLICATION_FACTOR=3 KAFKA_MIN_INSYNC=2 KAFKA_CERT_DIR="$(cat "$run/cert-dir")" \
    KAFKA_SASL_USERNAME="$(cat "$run/sasl-username")" KAFKA_SASL_PASSWORD="$(cat "$run/sasl-password")" \
    KAFKA_CLUSTER_ID="$(cat "$run/cluster-id")" "$here/kafka.sh" "$2"
}

random_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    [ "${id#-}" = "$id" ] && echo "$id" && return
  done
}

each() { # each COMMAND: run kafka.sh COMMAND for the three nodes at once; fail if one fails
  local n pids=() failed=0
  for n in 1 2 3; do node "$n" "$1" & pids+=($!); done
  for n in "${pids[@]}"; do wait "$n" || failed=1; done
  return $failed
}

start() {
  "$here/kafka.sh" fetch
  rm -rf "$run" && mkdir -p "$run"
  (umask 077
   echo "${KAFKA_SASL_USERNAME:-orderpipe}" >"$run/sasl-username"
   echo "${KAFKA_SASL_PASSWORD:-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}" >"$run/sasl-password")
  if [ -n "${KAFKA_CERT_DIR:-}" ]; then echo "$KAFKA_CERT_DIR" >"$run/cert-dir"
  else "$here/certs.sh" "$run/certs" && echo "$run/certs" >"$run/cert-dir"; fi
  random_id >"$run/cluster-id"
  each prepare
  local n
  for n in 1 2 3; do node "$n" launch; done
  each await || { stop; exit 1; }
  echo "kafka-cluster.sh: 3 KRaft nodes (broker+controller, 3-voter quorum), PLAINTEXT $(list 0), SASL_SSL $(list 2)" >&2
}

stop() { [ -d "$run" ] || return 0; each stop; }

tool() { # tool CLASS ARGS...: a Kafka command-line tool against the PLAINTEXT listeners
  local cls=$1; shift
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$root/deploy/local/kafka/log4j2.properties" \
    -cp "$("$here/kafka.sh" classpath)" "$cls" --bootstrap-server "$(list 0)" "$@"
}

one() { # one N COMMAND
  [[ ${1:-} =~ ^[123]$ ]] || { echo "kafka-cluster.sh: node must be 1, 2 or 3" >&2; exit 2; }
  node "$1" "$2"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  kill9) one "${2:-}" kill9 ;;
  stop-one) one "${2:-}" stop ;;
  restart) one "${2:-}" restart ;;
  sigstop) one "${2:-}" sigstop ;;
  sigcont) one "${2:-}" sigcont ;;
  leader-counts)
    tool org.apache.kafka.tools.TopicCommand --describe 2>/dev/null |
      awk '{for (i = 1; i < NF; i++) if ($i == "Leader:") c[$(i + 1)]++} END {for (n = 1; n <= 3; n++) print n, c[n] + 0}' ;;
  controller)
    tool org.apache.kafka.tools.MetadataQuorumCommand describe --status 2>/dev/null | awk '$1 == "LeaderId:" {print $2}' ;;
  brokers) list 0 ;;
  sasl-brokers) list 2 ;;
  *) echo "usage: $0 start|stop|kill9 N|stop-one N|restart N|sigstop N|sigcont N|leader-counts|controller|brokers|sasl-brokers" >&2; exit 2 ;;
esac
