#!/usr/bin/env bash
# System benchmark: the whole pipeline (ingress, normalizer, dispatcher as processes, the
# Dangdang sandbox) on one broker, driven by an OPEN-LOOP generator at fixed offered rates (each
# callback sent when due, whatever the replies before it do; latency from the due time), beside
# Kafka's own ProducerPerformance on the SAME broker in the same run. Reports the CPU of every
# process, the generator's own included. Writes the results into docs/performance.md (between
# the system-bench markers).
#
#   deploy/local/testenv.sh e2e/bench/system.sh                                  # what `make bench` runs
#   BENCH_RATES="100 1000 2000 4000 6000:60s" deploy/local/testenv.sh e2e/bench/system.sh  # and the sustained rate
#
# Env: KAFKA_BROKERS, REDIS_ADDR (set by testenv.sh), BENCH_RATES ("100 1000 2000 4000"; a rate
# written rate:duration is held that long instead of BENCH_DURATION), BENCH_DURATION (20s), RECORD_SIZE (850: the mean raw envelope), PP_RECORDS (200000;
# 0 skips ProducerPerformance), BENCH_DD_WINDOW (the dispatcher's DANGDANG_BATCH_WINDOW, default 1s as shipped), BENCH_COMMIT_INTERVAL (the normalizer's COMMIT_INTERVAL, default as shipped), BENCH_PRODUCER_LINGER (the services' KAFKA_PRODUCER_LINGER, default as shipped), BENCH_INGRESS_ENV, BENCH_DISPATCHER_ENV (space-separated NAME=VALUE pairs added to that service's environment, e.g. BENCH_DISPATCHER_ENV="FETCH_LINGER=2ms KAFKA_PRODUCER_LINGER=2ms"), BENCH_LOG_DIR (keeps the services' logs, one folder per rate), BENCH_WARM_RATE (the warm-up's callbacks/s for 2 s before each rate, default 500), BENCH_DOC (docs/performance.md; "-" prints only), OUT (a temp
# dir: logs and JSON). The broker's and Redis's CPU are read from the pid files testenv.sh's
# scripts keep under .run/ (or BENCH_KAFKA_PID / BENCH_REDIS_PID). BENCH_REPLY_TRACE=FILE.csv
# writes each rate's sends and acknowledgements (FILE-RATE.csv) for e2e/cmd/replytail, which
# lines the slowest replies up with the broker's pauses; BENCH_GEN_CPUPROFILE=FILE profiles the
# load generator; BENCH_GEN_LOG=FILE keeps its output (FILE-RATE) and BENCH_GEN_GODEBUG its
# GODEBUG (e.g. gctrace=1). The generator and the collector do not collect garbage during a
# rate (up to 4 GiB each) unless GOGC or GOMEMLIMIT is set.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=lib.sh
. "$root/e2e/bench/lib.sh"
brokers=${KAFKA_BROKERS:?run under deploy/local/testenv.sh}
: "${REDIS_ADDR:?run under deploy/local/testenv.sh}"
export ORDERPIPE_ROOT=${ORDERPIPE_ROOT:-$root}
rates=${BENCH_RATES:-100 1000 2000 4000}
duration=${BENCH_DURATION:-20s}
record_size=${RECORD_SIZE:-850}
pp_records=${PP_RECORDS:-200000}
doc=${BENCH_DOC:-$root/docs/performance.md}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

echo "system bench: pipeline at $rates callbacks/s, $duration each (artifacts in $out)" >&2
(cd "$root/e2e" && BENCH_SYSTEM=1 BENCH_RATES="$rates" BENCH_DURATION="$duration" BENCH_OUT="$out/system.jsonl" E2E_QUIET_LOGS=1 \
  go test -count=1 -timeout 60m -run '^TestSystemBench$' -v . >"$out/system.log" 2>&1) || { tail -50 "$out/system.log" >&2; exit 1; }

if [ "$pp_records" -gt 0 ]; then
  echo "system bench: Kafka ProducerPerformance on $brokers (${record_size} B records, acks=all)" >&2
  pp_topic=bench.system.pp.$(date +%s)
  producer_performance "$brokers" "$pp_topic" "$pp_records" "$record_size" "$out/pp.log"
  java -cp "$("$root/deploy/local/kafka.sh" classpath)" org.apache.kafka.tools.TopicCommand --bootstrap-server "$brokers" --delete --topic "$pp_topic" >/dev/null 2>&1 || true
else
  : >"$out/pp.log"
fi

python3 - "$out" "$record_size" "$doc" "$duration" <<'PY'
import json, re, sys, datetime
out, size, doc, duration = sys.argv[1:5]
rows = [json.loads(l) for l in open(f"{out}/system.jsonl")]
pp_lines = open(f"{out}/pp.log").read().strip().splitlines()
pp = pp_lines[-1] if pp_lines else ""
m = re.search(r"([\d.]+) records/sec.*?([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th", pp)
lines = []
lines.append(f"Run of {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, open-loop generator, each rate held for the seconds given; "
             "every order walks its flow, 30% of Dianwoda orders are Dangdang-routed; no faults.\n")
lines.append("| offered callbacks/s (held) | acknowledged/s (paced window) | late | refused, retried (ingress outcome) | success reply p50 / p99 (from due time) | of which due time → sent (the generator's delay) p50 / p99 | lost / duplicated | "
             "reply → unified event p50 / p99 / max | of which reply → the normalizer's write p50 / p99 | reply → Dangdang accepted p50 / p99 | Dangdang orders / calls (per call) | backlog drained after load | 0 lost and reply p99 ≤ 100 ms |")
lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
def refused(r):
    why = ", ".join(f"{k} {v}" for k, v in sorted((r.get("ingress_outcomes") or {}).items()) if k != "ok" and v)
    return f"{r['refused']} ({why})" if why else f"{r['refused']}"
for r in rows:
    holds = "yes" if r["lost"] == 0 and r["reply_p99_ms"] <= 100 else "**no**"
    lines.append(f"| {r['rate']:.0f} ({r['paced_seconds']:.0f} s) | {r['acked_per_sec']:.0f} | {r['late']} | {refused(r)} | {r['reply_p50_ms']:.1f} / {r['reply_p99_ms']:.1f} ms | "
                 f"{r.get('send_delay_p50_ms', 0):.1f} / {r.get('send_delay_p99_ms', 0):.1f} ms | {r['lost']} / {r['duplicated']} | "
                 f"{r['event_p50_ms']:.1f} / {r['event_p99_ms']:.1f} / {r['event_max_ms']:.0f} ms | "
                 f"{r.get('event_written_p50_ms', 0):.1f} / {r.get('event_written_p99_ms', 0):.1f} ms | {r['dd_p50_ms']:.0f} / {r['dd_p99_ms']:.0f} ms | "
                 f"{r['dd_orders']} / {r['dd_calls']} ({r['dd_orders_per_call']:.1f}) | {max(0, r['settle_seconds']):.1f} s | {holds} |")
procs = ["generator", "collector", "ingress", "normalizer", "dispatcher", "sandbox", "kafka", "redis"]
names = {"generator": "load generator (own process)", "collector": "collector (test process)", "kafka": "Kafka broker", "redis": "Redis"}
lines.append("\nCPU over each rate's window (from the start of the load until every acknowledged transition was seen), "
             "as cores used and µs per acknowledged callback; below each rate, the same processes' cores over 2 s with no load "
             "just before it (polls, timers, the broker's housekeeping: included in the figures above):\n")
lines.append("| offered callbacks/s | " + " | ".join(names.get(p, p) for p in procs) + " | all | machine: SHA-256 on one core before the rate |")
lines.append("|---|" + "---|" * (len(procs) + 2))
for r in rows:
    cores, us = r.get("cpu_cores") or {}, r.get("cpu_us_per_callback") or {}
    cells = [f"{cores[p]:.2f} c, {us[p]:.0f} µs" if p in cores else "n/a" for p in procs]
    cells.append(f"{sum(cores.values()):.2f} c, {sum(us.values()):.0f} µs")
    cells.append(f"{r['machine_sha256_mbps']:.0f} MB/s" if r.get("machine_sha256_mbps") else "n/a")
    lines.append(f"| {r['rate']:.0f} | " + " | ".join(cells) + " |")
    idle = r.get("cpu_idle_cores") or {}
    if idle:
        cells = [f"{idle[p]:.2f} c" if p in idle else "–" for p in procs]
        cells.append(f"{sum(idle.values()):.2f} c")
        cells.append("")
        lines.append(f"| ↳ idle baseline | " + " | ".join(cells) + " |")
if m:
    lines.append(f"\nKafka's own ProducerPerformance, same broker, same run: **{float(m.group(1)):.0f} records/s** ({size} B records, acks=all, "
                 f"async pipelined), latency p50 {m.group(4)} ms, p99 {m.group(6)} ms, avg {m.group(2)} ms.")
elif pp:
    lines.append(f"\nKafka ProducerPerformance: could not parse `{pp}`")
text = "\n".join(lines) + "\n"
print(text)
if doc != "-":
    s = open(doc).read()
    b, e = "<!-- system-bench:begin -->", "<!-- system-bench:end -->"
    i, j = s.index(b), s.index(e)
    open(doc, "w").write(s[:i+len(b)] + "\n" + text + s[j:])
    print(f"written to {doc}", file=sys.stderr)
PY
