#!/usr/bin/env bash
# Where a side-by-side round's p99 comes from: the ingress alone under the side-by-side harness's
# load (wrk -t1, pre-signed Eleme pushes from the peers' gen and bodies.lua), ROUNDS rounds, and for
# each one wrk's requests/s, p99 and max next to what the ingress itself counted in the same round
# (its ingress_request_seconds and ingress_kafka_write_seconds histograms, read from /metrics
# before and after): how many requests took longer than 20, 50 and 100 ms inside the ingress, and
# how many acks=all writes did. A round whose wrk p99 is far above the rest and whose Kafka
# writes show the same tail waited on the broker; one without such writes waited elsewhere.
# Requests still waiting when wrk stops are not in wrk's figures; the ingress counts them in the
# round during or after which they finish.
#
#   PEERS=<peers' bench> e2e/bench/ingress-stalls.sh INGRESS_BIN BROKERS [ROUNDS] [DURATION] [CONNS]
#
# Run it against a broker on disk and one on tmpfs (deploy/local/kafka.sh with KAFKA_RUN_DIR under
# /dev/shm) to tell the file system's stalls from the rest (docs/performance-history.md,
# fourteenth session).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
shared=${PEERS:?the peers bench folder (side-by-side/gen, side-by-side/bodies.lua)}
ingress_bin=${1:?ingress binary}; brokers=${2:?brokers}; rounds=${3:-8}; dur=${4:-10s}; conns=${5:-64}
out=${OUT:-$(mktemp -d)}
harness_bodies "$shared" "$out"
kill_pids_on_exit
start_harness_ingress "$ingress_bin" "$brokers" stalls.ingress.$(date +%s%N) 48181 48182 "$out/ingress.log"

run() { BODIES="$out/bodies.txt" wrk -t1 -c"$1" -d"$2" --latency -s "$shared/side-by-side/bodies.lua" http://127.0.0.1:48181/v1/callbacks/eleme; }
# counts NAME: the cumulative bucket counts of one histogram (ok Eleme requests, or Kafka writes)
# at 0.02, 0.05, 0.1 and +Inf, one line.
counts() {
  local sel='^ingress_kafka_write_seconds_bucket'
  [ "$1" = request ] && sel='^ingress_request_seconds_bucket\{outcome="ok",platform="eleme"'
  curl -fs -m 5 http://127.0.0.1:48182/metrics | grep -E "$sel" |
    awk '{match($0, /le="[^"]*"/); c[substr($0, RSTART + 4, RLENGTH - 5)] = $NF}
      END {printf "%d %d %d %d\n", c["0.02"], c["0.05"], c["0.1"], c["+Inf"]}'
}
# over BEFORE AFTER: from two counts lines, how many landed above 20, 50 and 100 ms in between.
over() { echo "$1 $2" | awk '{printf "%d/%d/%d", ($8-$4)-($5-$1), ($8-$4)-($6-$2), ($8-$4)-($7-$3)}'; }
run 8 3s > /dev/null 2>&1 || true  # warm-up
printf "%-5s %10s %9s %9s | %-24s | %-24s\n" round "req/s" p99 max "requests >20/>50/>100ms" "Kafka writes >20/>50/>100ms"
for i in $(seq 1 "$rounds"); do
  r0=$(counts request); k0=$(counts kafka)
  run "$conns" "$dur" > "$out/round$i.wrk" 2>&1
  r1=$(counts request); k1=$(counts kafka)
  printf "%-5s %10s %9s %9s | %-24s | %-24s\n" "$i" \
    "$(awk '/Requests\/sec/{print $2}' "$out/round$i.wrk")" "$(awk '/^ +99%/{print $2}' "$out/round$i.wrk")" \
    "$(awk '/^ +Latency /{print $4}' "$out/round$i.wrk")" "$(over "$r0" "$r1")" "$(over "$k0" "$k1")"
done
echo "(wrk -t1 -c$conns -d$dur; the ingress's counts from its own histograms over each round; out: $out)"
