#!/usr/bin/env bash
# A/B of two ingress builds (or one build under two environments) by CPU per accepted callback,
# both loaded at the same time, so that what the machine does to one it does to the other.
#
#   e2e/bench/ab-cpu.sh BIN_A BIN_B BROKERS [DURATION] [RUNS]
#
# Each run: a wrk -t1 -c64 on each server at once, with the side-by-side harness's bodies
# (pre-signed Eleme pushes, from the peers' bench folder: PEERS=<folder with side-by-side/>),
# after a 2 s warm-up of both; CPU of each server from /proc/<pid>/stat over the same window,
# divided by the requests wrk counted. The order the two wrk start in alternates run by run
# (an A/A run showed the second one about 1.5 % cheaper). Prints each run's B/A and the median.
# ENV_A / ENV_B: extra environment for one side ("GOGC=800"), e.g. to compare one binary with itself.
# BROKERS "none": both ingresses run without Kafka (a closed port), so every callback is shed
# (503 kafka_unavailable, the non-2xx column) and the figures are CPU per refusal: what a
# platform's retries cost an ingress that cannot take them.
#
# Alternating single runs of one binary on a noisy machine spread ±9 %; loaded side by side, one
# binary against itself gave B/A 0.974–1.038 over eight runs, median 0.998
# (docs/performance-history.md, "Thirteenth session").
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
shared=${PEERS:?the peers bench folder (side-by-side/)}
bin_a=${1:?binary A}; bin_b=${2:?binary B}; brokers=${3:?brokers}; dur=${4:-10s}; runs=${5:-8}
stamp=$(date +%s)
if [ "$brokers" = none ]; then
  brokers=127.0.0.1:1; export HARNESS_PROBE=healthz
fi
out=${OUT:-$(mktemp -d)}
harness_bodies "$shared" "$out"
kill_pids_on_exit
start_harness_ingress "$bin_a" "$brokers" ab.a.$stamp 48481 48482 "$out/a.log" "${ENV_A:-}"; pid_a=$harness_pid
start_harness_ingress "$bin_b" "$brokers" ab.b.$stamp 48491 48492 "$out/b.log" "${ENV_B:-}"; pid_b=$harness_pid
load() { # PORT SECONDS OUTFILE [CONNS]
  BODIES="$out/bodies.txt" wrk -t1 -c"${4:-64}" -d"$2" -s "$shared/side-by-side/bodies.lua" \
    "http://127.0.0.1:$1/v1/callbacks/eleme" > "$3" 2>&1
}
# the topics are created on the first writes: get past that before measuring
load 48481 4s /dev/null 8; load 48491 4s /dev/null 8
printf "%-4s %12s %12s %12s %12s %7s %9s\n" run "A µs/req" "B µs/req" "A req/s" "B req/s" "B/A" "non-2xx"
ratios=()
for i in $(seq 1 "$runs"); do
  load 48481 2s /dev/null & w1=$!; load 48491 2s /dev/null & w2=$!; wait $w1 $w2
  a0=$(ticks "$pid_a"); b0=$(ticks "$pid_b")
  if [ $((i % 2)) = 1 ]; then
    load 48481 "$dur" "$out/a.wrk" & w1=$!; load 48491 "$dur" "$out/b.wrk" & w2=$!
  else
    load 48491 "$dur" "$out/b.wrk" & w2=$!; load 48481 "$dur" "$out/a.wrk" & w1=$!
  fi
  wait $w1 $w2 # not a bare wait: the servers are children too
  a1=$(ticks "$pid_a"); b1=$(ticks "$pid_b")
  ra=$(awk '/requests in/{print $1}' "$out/a.wrk"); rb=$(awk '/requests in/{print $1}' "$out/b.wrk")
  [ -n "$ra" ] && [ -n "$rb" ] || { echo "run $i: wrk counted nothing (see $out/a.wrk, $out/b.wrk)" >&2; exit 1; }
  na=$(awk '/Non-2xx/{print $NF}' "$out/a.wrk"); nb=$(awk '/Non-2xx/{print $NF}' "$out/b.wrk")
  row=$(awk -v i="$i" -v ra="$ra" -v rb="$rb" -v da=$((a1 - a0)) -v db=$((b1 - b0)) -v t="$tck" \
    -v d="${dur%s}" -v non="${na:-0}/${nb:-0}" \
    'BEGIN { x = da*1e6/t/ra; y = db*1e6/t/rb; printf "%-4s %12.1f %12.1f %12.0f %12.0f %7.3f %9s", i, x, y, ra/d, rb/d, y/x, non }')
  echo "$row"; ratios+=("$(awk '{print $6}' <<<"$row")")
done
printf "%s\n" "${ratios[@]}" | sort -n | awk '{v[NR]=$1} END { m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "median B/A %.3f over %d runs (min %.3f, max %.3f)\n", m, NR, v[1], v[NR] }'
echo "out: $out"
