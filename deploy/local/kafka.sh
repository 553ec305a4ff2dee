#!/usr/bin/env bash
# Runs one Apache Kafka 4.x broker in KRaft mode (combined broker+controller) as a local process,
# fetched from Maven Central by Maven into .cache/ (git ignores it, and the next run reuses it).
#
#   deploy/local/kafka.sh fetch          resolve the jars (idempotent)
#   deploy/local/kafka.sh start          format fresh storage and start; waits until the broker answers
#   deploy/local/kafka.sh restart        start again on the storage it had (after stop, or kill -9)
#   deploy/local/kafka.sh stop           stop the broker started from this run dir
#   deploy/local/kafka.sh classpath      print the classpath (for kafka-tools such as ProducerPerformance)
#
# Environment: KAFKA_PORT (default 39092, not Kafka's default), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1),
# KAFKA_VERSION (default 4.1.1), KAFKA_RUN_DIR (default .run/kafka-$KAFKA_PORT).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=${KAFKA_VERSION:-4.1.1}
port=${KAFKA_PORT:-39092}
cport=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
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

java_run() { java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="$root/deploy/local/kafka/log4j2.properties" -cp "$libs/*" "$@"; }

up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

start() {
  fetch
  if up; then echo "kafka.sh: something already listens on 127.0.0.1:$port" >&2; exit 1; fi
  rm -rf "$run" && mkdir -p "$run/data"
  write_props
  local id
  id=$(java_run kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  java_run kafka.tools.StorageTool format -t "$id" -c "$run/server.properties" >"$run/format.log" 2>&1
  launch
}

restart() {
  fetch
  [ -f "$run/server.properties" ] || { echo "kafka.sh: no broker was started in $run" >&2; exit 1; }
  if up; then echo "kafka.sh: something already listens on 127.0.0.1:$port" >&2; exit 1; fi
  launch
}

write_props() {
  cat >"$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$run/data
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.flush.interval.messages=9223372036854775807
PROPS
}

launch() {
  local starts
  starts=$(( $(grep -c "Kafka Server started" "$run/broker.log" 2>/dev/null || true) + 1 ))
  LOG_DIR="$run" nohup java -Xms512m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$root/deploy/local/kafka/log4j2.properties" -Dkafka.logs.dir="$run" \
    -cp "$libs/*" kafka.Kafka "$run/server.properties" >>"$run/broker.log" 2>&1 &
  echo $! >"$run/pid"
  for _ in $(seq 1 240); do
    if [ "$(grep -c "Kafka Server started" "$run/broker.log" 2>/dev/null)" -ge "$starts" ] && up; then
      echo "kafka.sh: Apache Kafka $version (KRaft) on 127.0.0.1:$port, pid $(cat "$run/pid")" >&2
      return
    fi
    if ! kill -0 "$(cat "$run/pid")" 2>/dev/null; then break; fi
    sleep 0.25
  done
  echo "kafka.sh: broker did not start; last log lines:" >&2
  tail -30 "$run/broker.log" >&2
  exit 1
}

stop() {
  [ -f "$run/pid" ] || return 0
  local pid
  pid=$(cat "$run/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$run/pid"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  restart) restart ;;
  stop) stop ;;
  classpath) fetch; echo "$libs/*" ;;
  *) echo "usage: $0 fetch|start|restart|stop|classpath" >&2; exit 2 ;;
esac
