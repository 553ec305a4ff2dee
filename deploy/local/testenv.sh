#!/usr/bin/env bash
# Runs a command against a real Apache Kafka broker and real Redis servers on this machine:
#
#   deploy/local/testenv.sh go test ./...
#
# Where KAFKA_BROKERS / REDIS_ADDR are already set, those are used and nothing of that kind is
# started. Otherwise it makes a throw-away CA and certificates (deploy/local/certs.sh), starts a
# fresh KRaft broker (deploy/local/kafka.sh) with a plaintext, a SASL_SSL and a mutual-TLS
# listener, and the Redis servers below (deploy/local/redis*.sh), all on 127.0.0.1, at once; waits
# until everything answers, exports the variables below (and ORDERPIPE_ROOT, so tests can find
# these scripts to start brokers of their own), runs the command, and stops what it started
# whether it passed or not. Its state is in .run/testenv-$TEST_KAFKA_PORT (made fresh every run).
#
# Ports: TEST_KAFKA_PORT (kport, default 29292), TEST_REDIS_PORT (rport, default 26479).
#
#   KAFKA_BROKERS=127.0.0.1:kport                  plaintext, no auth (controller on kport+1)
#   TEST_KAFKA_SASL_SSL_BROKERS=127.0.0.1:kport+2   SASL_SSL: SCRAM-SHA-512, SCRAM-SHA-256, PLAIN
#   TEST_KAFKA_MTLS_BROKERS=127.0.0.1:kport+3       SSL with a required client certificate
#   TEST_KAFKA_SASL_USERNAME, TEST_KAFKA_SASL_PASSWORD   the one user (password random per run)
#   TEST_KAFKA_TLS_CA_FILE                          the test CA (PEM) that signed the server and client
#   TEST_KAFKA_TLS_CERT_FILE, TEST_KAFKA_TLS_KEY_FILE    a client certificate and key (PEM, PKCS#8)
#   TEST_KAFKA_TLS_WRONG_CA_FILE                    an unrelated CA ("wrong CA" tests)
#   REDIS_ADDR=127.0.0.1:rport                      plain redis-server, no auth
#   TEST_REDIS_TLS_ADDR=127.0.0.1:rport+1           TLS only (port 0), tls-auth-clients optional (a
#                                                   client certificate is checked when one is given,
#                                                   not required); the default user is off, so only
#   TEST_REDIS_USERNAME, TEST_REDIS_PASSWORD        this ACL user (~* &* +@all) gets in
#   TEST_REDIS_TLS_CA_FILE, TEST_REDIS_TLS_CERT_FILE, TEST_REDIS_TLS_KEY_FILE  (same CA/client as Kafka's)
#   TEST_REDIS_SENTINEL_ADDRS=127.0.0.1:rport+4,+5,+6    three sentinels (quorum 2) watching
#   TEST_REDIS_MASTER_NAME=orderpipe                primary rport+2, replica rport+3; plain, no auth
#   TEST_REDIS_CLUSTER_ADDRS=127.0.0.1:rport+7,+8,+9     a Redis Cluster's three primaries (each with a
#                                                   replica on rport+10..+12, bus ports rport+13..+18);
#                                                   plain, no auth
#
# TEST_KAFKA_CLUSTER=1 starts deploy/local/kafka-cluster.sh on kport (three KRaft nodes, each
# broker+controller; RF 3, min ISR 2) instead of the single broker: KAFKA_BROKERS,
# TEST_KAFKA_SASL_SSL_BROKERS and TEST_KAFKA_MTLS_BROKERS then list all three (node N on
# kport+4(N-1), +2, +3). Not started by a plain `make test`.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export ORDERPIPE_ROOT="$root"
kport=${TEST_KAFKA_PORT:-29292}
rport=${TEST_REDIS_PORT:-26479}
run="$root/.run/testenv-$kport"
started_kafka=0
started_redis=0
jobs_pending=()

cleanup() {
  local j
  for j in "${jobs_pending[@]}"; do kill "$j" 2>/dev/null; wait "$j" 2>/dev/null; done
  if [ "$started_kafka" = 1 ]; then
    if [ "${TEST_KAFKA_CLUSTER:-}" = 1 ]; then KAFKA_CLUSTER_PORT=$kport "$here/kafka-cluster.sh" stop &
    else KAFKA_PORT=$kport "$here/kafka.sh" stop & fi
  fi
  if [ "$started_redis" = 1 ]; then
    "$here/redis-sentinel.sh" stop $((rport + 2)) &
    "$here/redis-cluster.sh" stop $((rport + 7)) &
    "$here/redis.sh" stop "$rport" &
    "$here/redis.sh" stop $((rport + 1)) &
  fi
  wait
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$run" && mkdir -p "$run"
"$here/certs.sh" "$run/certs" || exit 1
rand() { head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# background starts every part in a job of its own; settle waits for them all.
background() { "$@" & jobs_pending+=($!); }
settle() {
  local j failed=0
  for j in "${jobs_pending[@]}"; do wait "$j" || failed=1; done
  jobs_pending=()
  return $failed
}

if [ -z "${KAFKA_BROKERS:-}" ]; then
  export TEST_KAFKA_SASL_USERNAME=orderpipe TEST_KAFKA_SASL_PASSWORD
  TEST_KAFKA_SASL_PASSWORD=$(rand)
  started_kafka=1
  if [ "${TEST_KAFKA_CLUSTER:-}" = 1 ]; then
    background env KAFKA_CLUSTER_PORT="$kport" KAFKA_CERT_DIR="$run/certs" KAFKA_SASL_USERNAME="$TEST_KAFKA_SASL_USERNAME" \
      KAFKA_SASL_PASSWORD="$TEST_KAFKA_SASL_PASSWORD" "$here/kafka-cluster.sh" start
    export KAFKA_BROKERS="127.0.0.1:$kport,127.0.0.1:$((kport + 4)),127.0.0.1:$((kport + 8))"
    export TEST_KAFKA_SASL_SSL_BROKERS="127.0.0.1:$((kport + 2)),127.0.0.1:$((kport + 6)),127.0.0.1:$((kport + 10))"
    export TEST_KAFKA_MTLS_BROKERS="127.0.0.1:$((kport + 3)),127.0.0.1:$((kport + 7)),127.0.0.1:$((kport + 11))"
  else
    background env KAFKA_PORT="$kport" KAFKA_CERT_DIR="$run/certs" KAFKA_SASL_USERNAME="$TEST_KAFKA_SASL_USERNAME" \
      KAFKA_SASL_PASSWORD="$TEST_KAFKA_SASL_PASSWORD" "$here/kafka.sh" start
    export KAFKA_BROKERS="127.0.0.1:$kport"
    export TEST_KAFKA_SASL_SSL_BROKERS="127.0.0.1:$((kport + 2))"
    export TEST_KAFKA_MTLS_BROKERS="127.0.0.1:$((kport + 3))"
  fi
  export TEST_KAFKA_TLS_CA_FILE="$run/certs/ca.crt" TEST_KAFKA_TLS_WRONG_CA_FILE="$run/certs/wrong-ca.crt"
  export TEST_KAFKA_TLS_CERT_FILE="$run/certs/client.crt" TEST_KAFKA_TLS_KEY_FILE="$run/certs/client.key"
fi
if [ -z "${REDIS_ADDR:-}" ]; then
  export TEST_REDIS_USERNAME=orderpipe TEST_REDIS_PASSWORD
  TEST_REDIS_PASSWORD=$(rand)
  started_redis=1
  background "$here/redis-sentinel.sh" start $((rport + 2))
  background "$here/redis-cluster.sh" start $((rport + 7))
  background "$here/redis.sh" start "$rport"
  background env REDIS_NODE_TLS_DIR="$run/certs" REDIS_NODE_USERNAME="$TEST_REDIS_USERNAME" \
    REDIS_NODE_PASSWORD="$TEST_REDIS_PASSWORD" "$here/redis.sh" start $((rport + 1))
  export REDIS_ADDR="127.0.0.1:$rport"
  export TEST_REDIS_TLS_ADDR="127.0.0.1:$((rport + 1))"
  export TEST_REDIS_TLS_CA_FILE="$run/certs/ca.crt"
  export TEST_REDIS_TLS_CERT_FILE="$run/certs/client.crt" TEST_REDIS_TLS_KEY_FILE="$run/certs/client.key"
  export TEST_REDIS_SENTINEL_ADDRS="127.0.0.1:$((rport + 4)),127.0.0.1:$((rport + 5)),127.0.0.1:$((rport + 6))"
  export TEST_REDIS_MASTER_NAME=orderpipe
  export TEST_REDIS_CLUSTER_ADDRS="127.0.0.1:$((rport + 7)),127.0.0.1:$((rport + 8)),127.0.0.1:$((rport + 9))"
fi
# TESTENV_ALONGSIDE: a command run beside the startup (make test warms the Go caches there while
# Maven fetches Kafka and the JVM starts); waited for with the rest, its failure ignored (the
# tests that follow report what matters).
alongside=0
if [ -n "${TESTENV_ALONGSIDE:-}" ]; then
  bash -c "$TESTENV_ALONGSIDE" & alongside=$!
fi
settle || exit 1
[ "$alongside" = 0 ] || wait "$alongside" || true
echo "testenv: KAFKA_BROKERS=$KAFKA_BROKERS (SASL_SSL ${TEST_KAFKA_SASL_SSL_BROKERS:-none}, mTLS ${TEST_KAFKA_MTLS_BROKERS:-none})" \
  "REDIS_ADDR=$REDIS_ADDR (TLS ${TEST_REDIS_TLS_ADDR:-none}, sentinels ${TEST_REDIS_SENTINEL_ADDRS:-none}, cluster ${TEST_REDIS_CLUSTER_ADDRS:-none})" >&2
"$@"
