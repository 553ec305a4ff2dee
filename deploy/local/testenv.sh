#!/usr/bin/env bash
# Runs a command against a real Apache Kafka broker and a real Redis on this machine:
#
#   deploy/local/testenv.sh go test ./...
#
# Where KAFKA_BROKERS / REDIS_ADDR are already set, those are used and nothing is started.
# Otherwise it starts a fresh KRaft broker (deploy/local/kafka.sh) and a redis-server
# (deploy/local/redis.sh) on non-default 127.0.0.1 ports, waits until both answer, exports
# KAFKA_BROKERS and REDIS_ADDR (and ORDERPIPE_ROOT, so tests can find these scripts to start
# brokers of their own), runs the command, and stops what it started whether it passed or not.
#
# Ports: TEST_KAFKA_PORT (default 39292), TEST_REDIS_PORT (default 36479).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export ORDERPIPE_ROOT="$root"
kport=${TEST_KAFKA_PORT:-39292}
rport=${TEST_REDIS_PORT:-36479}
started_kafka=0
started_redis=0

cleanup() {
  [ "$started_kafka" = 1 ] && KAFKA_PORT=$kport "$here/kafka.sh" stop
  [ "$started_redis" = 1 ] && REDIS_PORT=$rport "$here/redis.sh" stop
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${KAFKA_BROKERS:-}" ]; then
  KAFKA_PORT=$kport "$here/kafka.sh" start || exit 1
  started_kafka=1
  export KAFKA_BROKERS="127.0.0.1:$kport"
fi
if [ -z "${REDIS_ADDR:-}" ]; then
  REDIS_PORT=$rport "$here/redis.sh" start || exit 1
  started_redis=1
  export REDIS_ADDR="127.0.0.1:$rport"
fi
echo "testenv: KAFKA_BROKERS=$KAFKA_BROKERS REDIS_ADDR=$REDIS_ADDR" >&2
"$@"
