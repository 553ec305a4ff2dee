#!/usr/bin/env bash
# Runs one Apache Kafka 4.x broker in KRaft mode (combined broker+controller) as a local process,
# fetched from Maven Central by Maven into .cache/ (git ignores it, and the next run reuses it).
#
#   deploy/local/kafka.sh fetch          resolve the jars (idempotent)
#   deploy/local/kafka.sh start          format fresh storage and start; waits until the broker answers
#   deploy/local/kafka.sh restart        start again on the storage it had (after stop, or kill -9)
#   deploy/local/kafka.sh stop           stop the broker started from this run dir (SIGTERM, SIGKILL after 15 s)
#   deploy/local/kafka.sh kill9          kill -9 the broker (its data stays for restart)
#   deploy/local/kafka.sh sigstop|sigcont  freeze / resume the broker process
#   deploy/local/kafka.sh classpath      print the classpath (for kafka-tools such as ProducerPerformance)
#   deploy/local/kafka.sh prepare|launch|await
#                                        the three steps of start (format; start the JVM; wait until it
#                                        answers), separate so kafka-cluster.sh can start a quorum at once
#
# Environment: KAFKA_PORT (default 39092, not Kafka's default; the PLAINTEXT listener),
# KAFKA_CONTROLLER_PORT (KAFKA_PORT+1), KAFKA_VERSION (default 4.1.1), KAFKA_RUN_DIR (default
# .run/kafka-$KAFKA_PORT), KAFKA_HEAP (default "-Xms512m -Xmx1g"), KAFKA_JVM_PERFORMANCE_OPTS (default
# what Kafka's own bin/kafka-run-class.sh gives a broker: G1 with a 20 ms pause goal).
#
# Secured listeners, only when KAFKA_CERT_DIR is set (a directory made by deploy/local/certs.sh):
#   SASL_SSL on 127.0.0.1:KAFKA_SASL_SSL_PORT (KAFKA_PORT+2): SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN,
#     server certificate KAFKA_CERT_DIR/server.pem, no client certificate asked for;
#   SSL on 127.0.0.1:KAFKA_MTLS_PORT (KAFKA_PORT+3): mutual TLS, ssl.client.auth=required, clients'
#     certificates checked against KAFKA_CERT_DIR/ca.crt.
#   One user, KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD (required then): its SCRAM credentials are
#   written into the KRaft bootstrap metadata at format (kafka-storage format --add-scram), and the
#   PLAIN mechanism gets the same user in the listener's JAAS config. No authorizer (no ACLs).
#   Inter-broker and controller traffic stays on PLAINTEXT.
#
# Cluster (used by deploy/local/kafka-cluster.sh; the defaults make a single node):
#   KAFKA_NODE_ID (1), KAFKA_QUORUM_VOTERS (id@127.0.0.1:controller-port,...; default this node
#   alone), KAFKA_CLUSTER_ID (default a fresh random id), KAFKA_REPLICATION_FACTOR (default 1: the
#   default, offsets and transaction-state replication factor), KAFKA_MIN_INSYNC (default 1).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=${KAFKA_VERSION:-4.1.1}
port=${KAFKA_PORT:-39092}
cport=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
sport=${KAFKA_SASL_SSL_PORT:-$((port + 2))}
mport=${KAFKA_MTLS_PORT:-$((port + 3))}
certs=${KAFKA_CERT_DIR:-}
node=${KAFKA_NODE_ID:-1}
voters=${KAFKA_QUORUM_VOTERS:-$node@127.0.0.1:$cport}
rf=${KAFKA_REPLICATION_FACTOR:-1}
minisr=${KAFKA_MIN_INSYNC:-1}
heap=${KAFKA_HEAP:--Xms512m -Xmx1g}
jvm=${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent}
libs="$root/.cache/kafka/$version/libs"
run=${KAFKA_RUN_DIR:-$root/.run/kafka-$port}

fetch() {
  if [ -f "$libs/.complete" ]; then return; fi
  command -v mvn >/dev/null || { echo "kafka.sh: mvn is required (OpenJDK 17 + Maven)" >&2; exit 1; }
  echo "kafka.sh: resolving org.apache.kafka:kafka_2.13:$version from Maven Central" >&2
  mvn -q -B -f "$root/deploy/local/kafka/pom.xml" -Dkafka.version="$version" \
    -Dmaven.repo.local="$root/.cache/m2" dependency:copy-dependencies -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
}

# A short-lived tool JVM: small heap, serial GC and the C1 compiler only start fastest.
java_tool() { java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="$root/deploy/local/kafka/log4j2.properties" -cp "$libs/*" "$@"; }

up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

# A Kafka Uuid (16 random bytes, base64url without padding, not starting with '-'), made here
# rather than by `kafka-storage random-uuid`, which costs a JVM start.
random_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    [ "${id#-}" = "$id" ] && echo "$id" && return
  done
}

prepare() {
  fetch
  if up; then echo "kafka.sh: something already listens on 127.0.0.1:$port" >&2; exit 1; fi
  rm -rf "$run" && mkdir -p "$run/data"
  write_props
  local id=${KAFKA_CLUSTER_ID:-$(random_id)} scram=()
  if [ -n "$certs" ]; then
    scram=(--add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USERNAME,password=$KAFKA_SASL_PASSWORD]"
      --add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USERNAME,password=$KAFKA_SASL_PASSWORD]")
  fi
  if ! java_tool kafka.tools.StorageTool format -t "$id" -c "$run/server.properties" "${scram[@]}" \
    >"$run/format.log" 2>&1; then
    echo "kafka.sh: formatting the storage failed:" >&2
    tail -20 "$run/format.log" >&2
    exit 1
  fi
}

start() { prepare; launch; await; }

restart() {
  fetch
  [ -f "$run/server.properties" ] || { echo "kafka.sh: no broker was started in $run" >&2; exit 1; }
  if up; then echo "kafka.sh: something already listens on 127.0.0.1:$port" >&2; exit 1; fi
  launch
  await
}

write_props() {
  local listeners="PLAINTEXT://127.0.0.1:$port" map="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [ -n "$certs" ]; then
    : "${KAFKA_SASL_USERNAME:?kafka.sh: KAFKA_CERT_DIR needs KAFKA_SASL_USERNAME}"
    : "${KAFKA_SASL_PASSWORD:?kafka.sh: KAFKA_CERT_DIR needs KAFKA_SASL_PASSWORD}"
    listeners="$listeners,SASL_SSL://127.0.0.1:$sport,SSL://127.0.0.1:$mport"
    map="$map,SASL_SSL:SASL_SSL,SSL:SSL"
  fi
  cat >"$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
listeners=$listeners,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
listener.security.protocol.map=$map
inter.broker.listener.name=PLAINTEXT
log.dirs=$run/data
num.partitions=3
default.replication.factor=$rf
min.insync.replicas=$minisr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$minisr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$minisr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.flush.interval.messages=9223372036854775807
PROPS
  [ -n "$certs" ] || return 0
  chmod 600 "$run/server.properties" # it holds the PLAIN user's password
  cat >>"$run/server.properties" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USERNAME="$KAFKA_SASL_PASSWORD";
ssl.keystore.type=PEM
ssl.keystore.location=$certs/server.pem
ssl.truststore.type=PEM
ssl.truststore.location=$certs/ca.crt
ssl.client.auth=none
listener.name.ssl.ssl.client.auth=required
PROPS
}

binds() { local n; n=$(grep -c "Address already in use" "$run/broker.log" 2>/dev/null || true); echo "${n:-0}"; }

# free_ports waits (up to 90 s) until the broker's ports can be bound (as the broker binds them,
# with SO_REUSEADDR): another process's outgoing connection, or its TIME_WAIT, can hold one.
free_ports() {
  local ports="$port $cport" i
  [ -z "$certs" ] || ports="$ports $sport $mport"
  for i in $(seq 1 450); do
    # shellcheck disable=SC2086
    bindable $ports && return
    [ "$i" = 1 ] && echo "kafka.sh: a port of the broker on 127.0.0.1:$port is held by another connection; waiting" >&2
    sleep 0.2
  done
}

# bindable PORT...: deploy/local/ports.sh
# shellcheck source=ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

launch() {
  free_ports
  local starts
  starts=$(( $(grep -c "Kafka Server started" "$run/broker.log" 2>/dev/null || true) + 1 ))
  echo "$starts" >"$run/starts"
  binds >"$run/binds"
  # shellcheck disable=SC2086 # $heap and $jvm are lists of JVM flags
  LOG_DIR="$run" nohup java $heap $jvm -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$root/deploy/local/kafka/log4j2.properties" -Dkafka.logs.dir="$run" \
    -cp "$libs/*" kafka.Kafka "$run/server.properties" >>"$run/broker.log" 2>&1 &
  echo $! >"$run/pid"
}

# await waits until the broker answers. The test ports lie in Linux's ephemeral range, so another
# process's outgoing connection (or its TIME_WAIT, up to 60 s) can hold one of the broker's
# ports: a broker that exits because a bind failed is started again for up to 90 s.
await() {
  local starts deadline=$((SECONDS + 300)) retry_until=$((SECONDS + 90))
  starts=$(cat "$run/starts")
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ "$(grep -c "Kafka Server started" "$run/broker.log" 2>/dev/null)" -ge "$starts" ] && up; then
      echo "kafka.sh: Apache Kafka $version (KRaft) node $node on 127.0.0.1:$port${certs:+ (SASL_SSL :$sport, mTLS :$mport)}, pid $(cat "$run/pid")" >&2
      return
    fi
    if ! kill -0 "$(cat "$run/pid")" 2>/dev/null; then
      [ "$(binds)" -gt "$(cat "$run/binds")" ] && [ "$SECONDS" -lt "$retry_until" ] || break
      echo "kafka.sh: a port of the broker on 127.0.0.1:$port is held by another connection; trying again" >&2
      sleep 1
      launch
      deadline=$((SECONDS + 300))
      continue
    fi
    sleep 0.25
  done
  echo "kafka.sh: broker on 127.0.0.1:$port did not start; last log lines:" >&2
  tail -30 "$run/broker.log" >&2
  exit 1
}

stop() {
  [ -f "$run/pid" ] || return 0
  local pid
  pid=$(cat "$run/pid")
  kill -CONT "$pid" 2>/dev/null || true # a frozen broker cannot stop
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$run/pid"
}

kill9() {
  [ -f "$run/pid" ] || { echo "kafka.sh: no broker running from $run" >&2; exit 1; }
  local pid
  pid=$(cat "$run/pid")
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$run/pid"
}

signal() {
  [ -f "$run/pid" ] || { echo "kafka.sh: no broker running from $run" >&2; exit 1; }
  kill "-$1" "$(cat "$run/pid")"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  restart) restart ;;
  stop) stop ;;
  kill9) kill9 ;;
  sigstop) signal STOP ;;
  sigcont) signal CONT ;;
  prepare) prepare ;;
  launch) launch ;;
  await) await ;;
  classpath) fetch; echo "$libs/*" ;;
  *) echo "usage: $0 fetch|start|restart|stop|kill9|sigstop|sigcont|prepare|launch|await|classpath" >&2; exit 2 ;;
esac
