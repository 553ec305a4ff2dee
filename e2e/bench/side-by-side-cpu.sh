#!/usr/bin/env bash
# CPU per accepted callback of the ingress and of the Watermill peer (the peers' bench folder, which
# holds side-by-side/{gen,bodies.lua} and watermill-ingress/, outside this repository), under the
# side-by-side harness's own load (wrk -t1, pre-signed Eleme pushes from its gen, bodies.lua),
# on one broker: requests/s, p50/p99, and the CPU the server, the broker and wrk itself spent
# per request, read from /proc/<pid>/stat over the measured run. It complements
# ingress-side-by-side.sh (which reports requests/s and latency only). Each round starts with the
# harness's do-nothing net/http handler (its noop), whose CPU per request is the HTTP floor
# under the same load: what no change behind net/http can go below. Next comes our echo reference
# that reads the body and waits for a batched acknowledgement before it answers (loadgen
# -serve-ackwait): the floor of a handler that stores before it replies. A reply sent at once
# escapes most of net/http's background read and the parking and waking that waiting costs, and
# under wrk's closed loop the wait also sets the rate, which sets the CPU per request; so the
# reference waits a 1 ms linger (ACK_LINGER) and no byte threshold (ACK_BYTES=0), which puts it
# near the ingress's rate and p50 under this load. ACK_BYTES=16384 releases a batch early as the
# Producer's LingerBytes does, and shows the same handler at twice the rate.
#
#   e2e/bench/side-by-side-cpu.sh INGRESS_BIN BROKERS [DURATION] [CONNS] [ROUNDS]
#
# BROKERS must be one local broker whose JVM this user can see (its pid is found by its port).
# PEERS: the peers' bench folder (required).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
shared=${PEERS:?the peers bench folder (side-by-side/, watermill-ingress/)}
ingress_bin=${1:?ingress binary}; brokers=${2:?brokers}; dur=${3:-10s}; conns=${4:-64}; rounds=${5:-2}
stamp=$(date +%s)
out=${OUT:-$(mktemp -d)}
harness_bodies "$shared" "$out"
(cd "$shared/watermill-ingress" && go build -o "$out/watermill" .)
(cd "$shared/side-by-side" && go build -o "$out/noop" ./noop)
(cd "$(dirname "$0")/../.." && go build -o "$out/loadgen" ./e2e/cmd/loadgen)
broker_pid=$(ss -ltnpH "sport = :${brokers##*:}" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
[ -n "$broker_pid" ] || { echo "no process listens on $brokers" >&2; exit 1; }
kill_pids_on_exit

start_harness_ingress "$ingress_bin" "$brokers" sbscpu.ingress.$stamp 48181 48182 "$out/ingress.log"; ingress_pid=$harness_pid
"$out/watermill" --addr 127.0.0.1:48183 --brokers "$brokers" --app $harness_app --secret $harness_secret --topic sbscpu.watermill.$stamp \
  > "$out/watermill.log" 2>&1 & pids+=($!); watermill_pid=$!
wait_http http://127.0.0.1:48183/healthz
"$out/noop" -addr 127.0.0.1:48180 > "$out/noop.log" 2>&1 & pids+=($!); noop_pid=$!
# The noop ignores ListenAndServe's error: a port taken in the meantime ends it silently.
wait_http http://127.0.0.1:48180/
kill -0 "$noop_pid" 2>/dev/null || { echo "the noop exited: is 127.0.0.1:48180 taken?" >&2; exit 1; }
"$out/loadgen" -serve-ackwait 127.0.0.1:48184 -ack-linger "${ACK_LINGER:-1ms}" -ack-bytes "${ACK_BYTES:-0}" > "$out/ackwait.log" 2>&1 & pids+=($!); ackwait_pid=$!
wait_http http://127.0.0.1:48184/v1/callbacks/eleme
# The peer's topic like the ingress's: 12 partitions (it would be auto-created otherwise).
java -cp "${KAFKA_CP:?classpath of the Kafka jars: KAFKA_CP=\$(deploy/local/kafka.sh classpath)}" org.apache.kafka.tools.TopicCommand \
  --bootstrap-server "$brokers" --create --topic sbscpu.watermill.$stamp --partitions 12 --replication-factor 1 >/dev/null 2>&1 || true

# measure NAME PID URL: one wrk run after a warm-up; prints one row.
measure() {
  local name=$1 pid=$2 url=$3
  BODIES="$out/bodies.txt" wrk -t1 -c8 -d3s -s "$shared/side-by-side/bodies.lua" "$url" >/dev/null 2>&1 || true
  local s0 k0 b0 w0 s1 k1 b1 w1
  s0=$(ticks "$pid"); k0=$(sys_ticks "$pid"); b0=$(ticks "$broker_pid")
  BODIES="$out/bodies.txt" wrk -t1 -c"$conns" -d"$dur" --latency -s "$shared/side-by-side/bodies.lua" "$url" > "$out/$name.wrk" 2>&1 &
  local wrk_pid=$!; sleep 0.2; w0=$(ticks "$wrk_pid" 2>/dev/null || echo 0)
  while kill -0 $wrk_pid 2>/dev/null; do w1=$(ticks "$wrk_pid" 2>/dev/null || echo "$w1"); sleep 0.5; done
  s1=$(ticks "$pid"); k1=$(sys_ticks "$pid"); b1=$(ticks "$broker_pid")
  local reqs rps p50 p99 non
  reqs=$(awk '/requests in/{print $1}' "$out/$name.wrk"); rps=$(awk '/Requests\/sec/{print $2}' "$out/$name.wrk")
  p50=$(awk '/^ +50%/{print $2}' "$out/$name.wrk"); p99=$(awk '/^ +99%/{print $2}' "$out/$name.wrk")
  non=$(awk '/Non-2xx/{print $NF}' "$out/$name.wrk")
  awk -v n="$name" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v non="${non:-0}" -v reqs="$reqs" -v tck="$tck" \
    -v s=$((s1 - s0)) -v k=$((k1 - k0)) -v b=$((b1 - b0)) -v w=$((w1 - w0)) \
    'BEGIN { printf "%-10s %10s %9s %9s %7s %12.1f %9.1f %12.1f %12.1f\n", n, rps, p50, p99, non, s*1e6/tck/reqs, k*1e6/tck/reqs, b*1e6/tck/reqs, w*1e6/tck/reqs }'
}
printf "%-10s %10s %9s %9s %7s %12s %9s %12s %12s\n" server "req/s" p50 p99 non2xx "server µs" "of it sys" "broker µs" "wrk µs"
for _ in $(seq 1 "$rounds"); do
  measure noop "$noop_pid" http://127.0.0.1:48180/v1/callbacks/eleme
  measure ackwait "$ackwait_pid" http://127.0.0.1:48184/v1/callbacks/eleme
  measure ingress "$ingress_pid" http://127.0.0.1:48181/v1/callbacks/eleme
  measure watermill "$watermill_pid" http://127.0.0.1:48183/v1/callbacks/eleme
done
echo "(wrk -t1 -c$conns -d$dur; CPU per request from /proc/<pid>/stat; load average $(cut -d' ' -f1-3 /proc/loadavg); out: $out)"
