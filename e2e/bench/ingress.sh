#!/usr/bin/env bash
# Ingress benchmark: the ingress against its two ceilings, in one run, on one machine.
#
#   e2e/bench/ingress.sh                       # uses KAFKA_BROKERS (default the dev broker 127.0.0.1:39092)
#
# 1. echo     the do-nothing echo handler (loadgen -serve-noop): the HTTP ceiling, flat out and at RATE/s
# 2. ingress  the real ingress (verify, envelope, synchronous acks=all write): flat out and at RATE/s
# 3. kafka    Kafka's own ProducerPerformance, same broker, record size ~ the ingress's envelope, acks=all
#
# Env: WARMUP (15s, flat out before each ingress measurement), KAFKA_BROKERS, OWN_BROKER=1 (start a broker of the bench's own on OWN_BROKER_PORT, default free,
# so other users of the shared dev broker do not load it), DURATION (20s), CONNS (64), RATE (2000), VARIANTS (extra ingress runs, e.g.
# "INGRESS_BATCH_TIMEOUT=5ms GOGC=400"), RECORD_SIZE (mean envelope bytes,
# default 780 as measured from the topic for loadgen traffic), PP_RECORDS (200000), OUT (a temp dir: logs, pprof).
# CPU profiles of each ingress run are written to $OUT/<run>-{flat,rate}.cpu.pprof
# (go tool pprof -top $OUT/ingress $OUT/ingress-flat.cpu.pprof).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=lib.sh
. "$root/e2e/bench/lib.sh"
brokers=${KAFKA_BROKERS:-127.0.0.1:39092}
own_broker=${OWN_BROKER:-0}
duration=${DURATION:-20s}
conns=${CONNS:-64}
rate=${RATE:-2000}
record_size=${RECORD_SIZE:-780}
pp_records=${PP_RECORDS:-200000}
out=${OUT:-$(mktemp -d)}
noop_addr=127.0.0.1:${NOOP_PORT:-18180}
http_addr=127.0.0.1:${INGRESS_PORT:-18181}
ops_addr=127.0.0.1:${OPS_PORT:-18182}
stamp=$(date +%s)
raw_topic=bench.ingress.raw.$stamp
pp_topic=bench.ingress.pp.$stamp
dsec=bench-dianwoda-secret esec=bench-eleme-secret app=62933118
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "$own_broker" = 1 ]; then KAFKA_PORT=$own_port KAFKA_RUN_DIR=$out/kafka "$root/deploy/local/kafka.sh" stop; fi
}
trap cleanup EXIT

if [ "$own_broker" = 1 ]; then
  # A broker of the bench's own: other work on the machine does not produce to it.
  own_port=${OWN_BROKER_PORT:-$(python3 -c 'import random, socket
for _ in range(100):
    # below the ephemeral range (32768+), where another process could take the port meanwhile
    p = random.randrange(20000, 32000); a = socket.socket(); b = socket.socket()
    try:
        a.bind(("127.0.0.1", p))
    except OSError:
        a.close(); b.close(); continue
    try:
        b.bind(("127.0.0.1", p + 1)); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
print(p)')}
  KAFKA_PORT=$own_port KAFKA_RUN_DIR=$out/kafka "$root/deploy/local/kafka.sh" start
  brokers=127.0.0.1:$own_port
fi
echo "bench: building into $out" >&2
(cd "$root" && go build -o "$out/" ./ingress ./e2e/cmd/loadgen)
broker_pid=$(ss -ltnpH "sport = :${brokers##*:}" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
ticks() { if [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ]; then awk '{print $14+$15}' "/proc/$1/stat"; else echo 0; fi; }
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
# lg LABEL SERVER_PID ARGS...: one measured loadgen run; CPU of server, broker and the whole
# machine (so other work on the shared machine shows) is recorded next to the result.
lg() {
  local label=$1 spid=$2; shift 2
  local s0 b0 m0 t0; s0=$(ticks "$spid"); b0=$(ticks "$broker_pid"); m0=$(busy); t0=$(date +%s.%N)
  "$out/loadgen" -dianwoda-secret "$dsec" -eleme-secret "$esec" -eleme-app "$app" -conns "$conns" -duration "$duration" -json -label "$label" "$@" >>"$out/results.jsonl"
  echo "{\"Label\":\"$label\",\"Server\":$(( $(ticks "$spid") - s0 )),\"Broker\":$(( $(ticks "$broker_pid") - b0 )),\"Machine\":$(( $(busy) - m0 )),\"Wall\":$(echo "$(date +%s.%N) - $t0" | bc)}" >>"$out/cpu.jsonl"
}
# Kafka's ceiling first: it also warms the broker (JIT) before the HTTP runs are measured.
echo "bench: 1/3 kafka ProducerPerformance (topic $pp_topic, ${record_size} B records, acks=all)" >&2
cp=$("$root/deploy/local/kafka.sh" classpath)
producer_performance "$brokers" "$pp_topic" "$pp_records" "$record_size" "$out/pp.log"

: >"$out/results.jsonl"; : >"$out/cpu.jsonl"
echo "bench: 2/3 echo reference" >&2
"$out/loadgen" -serve-noop "$noop_addr" & pids+=($!); noop_pid=$!
sleep 0.5
lg echo-flat "$noop_pid" -url "http://$noop_addr"
lg "echo-$rate" "$noop_pid" -url "http://$noop_addr" -rate "$rate"
kill "$noop_pid"; wait "$noop_pid" 2>/dev/null || true

# ingress_runs NAME [VAR=value...]: start the ingress with extra settings, measure flat out and
# at RATE/s (CPU profile and metrics saved under NAME), stop it.
ingress_runs() {
  local name=$1; shift
  echo "bench: 3/3 $name (topic $raw_topic) $*" >&2
  env KAFKA_BROKERS="$brokers" HTTP_ADDR="$http_addr" OPS_ADDR="$ops_addr" TOPIC_RAW="$raw_topic" TOPIC_PARTITIONS=12 \
    DIANWODA_SECRETS="$dsec" ELEME_SECRETS="$app=$esec" LOG_LEVEL=warn INGRESS_DRAIN_DELAY=0s "$@" \
    "$out/ingress" >"$out/$name.log" 2>&1 & pids+=($!); ing_pid=$!
  wait_http "http://$ops_addr/readyz"
  # Warm up flat out: a broker that has not yet seen this pattern of small produce requests uses
  # twice the CPU per record for a while (JIT), which would be charged to the first run measured.
  "$out/loadgen" -dianwoda-secret "$dsec" -eleme-secret "$esec" -eleme-app "$app" -url "http://$http_addr" -conns "$conns" -duration "${WARMUP:-15s}" >/dev/null
  prof_secs=$(( ${duration%s} > 15 ? 10 : ${duration%s} / 2 ))
  curl -fs -o "$out/$name-flat.cpu.pprof" "http://$ops_addr/debug/pprof/profile?seconds=$prof_secs" & prof_pid=$!
  lg "$name-flat" "$ing_pid" -url "http://$http_addr"
  wait "$prof_pid" || true
  curl -fs "http://$ops_addr/metrics" >"$out/$name-metrics-before-rate.txt"
  curl -fs -o "$out/$name-rate.cpu.pprof" "http://$ops_addr/debug/pprof/profile?seconds=$prof_secs" & prof_pid=$!
  lg "$name-$rate" "$ing_pid" -url "http://$http_addr" -rate "$rate"
  wait "$prof_pid" || true
  curl -fs "http://$ops_addr/metrics" >"$out/$name-metrics-after-rate.txt"
  kill -TERM "$ing_pid"; wait "$ing_pid" 2>/dev/null || true
}
ingress_runs ingress
# VARIANTS="INGRESS_BATCH_TIMEOUT=5ms GOGC=400": each is one more ingress run with that setting.
for v in ${VARIANTS:-}; do ingress_runs "ingress[$v]" "$v"; done

# The real envelope size, to check RECORD_SIZE against.
timeout 60 java -Xmx256m -cp "$cp" -Dlog4j2.configurationFile="$root/deploy/local/kafka/log4j2.properties" \
  org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$brokers" --topic "$raw_topic" \
  --from-beginning --max-messages 2000 2>/dev/null | awk '{n++; b+=length($0)} END {if (n) printf "%d\n", b/n}' >"$out/envelope-bytes.txt" || true
for t in "$raw_topic" "$pp_topic"; do
  java -cp "$cp" org.apache.kafka.tools.TopicCommand --bootstrap-server "$brokers" --delete --topic "$t" >/dev/null 2>&1 || true
done

python3 - "$out" "$rate" "$record_size" <<'PY'
import json, re, sys
out, rate = sys.argv[1], sys.argv[2]
rows, cpu = {}, {}
for line in open(f"{out}/results.jsonl"):
    r = json.loads(line); rows[r["Label"]] = r
for line in open(f"{out}/cpu.jsonl"):
    r = json.loads(line); cpu[r["Label"]] = r
pp = open(f"{out}/pp.log").read().strip().splitlines()[-1]
m = re.search(r"([\d.]+) records/sec.*?([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th", pp)
print(f"{'run':<40}{'ok/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p999 ms':>9}  non-200 / notes")
for k in rows:
    r = rows[k]
    bad = {s: n for s, n in (r["ByStatus"] or {}).items() if s != "200"}
    print(f"{k:<40}{r['Throughput']:>10.0f}{r['P50ms']:>9.2f}{r['P99ms']:>9.2f}{r['P999ms']:>9.2f}  {bad or ''} neterr={r['NetErrors']} late={r['Late']} conns={r['Conns']}")
if m:
    print(f"{'kafka-producer':<40}{float(m.group(1)):>10.0f}{float(m.group(4)):>9.2f}{float(m.group(6)):>9.2f}{float(m.group(7)):>9.2f}  async pipelined, acks=all, {sys.argv[3]} B records (avg {m.group(2)} ms)")
else:
    print("kafka-producer: could not parse:", pp)
ratio = rows["ingress-flat"]["Throughput"] / rows["echo-flat"]["Throughput"]
print(f"\nCPU in cores (2 on this machine) during each run; 'others' is everything else on the shared machine")
print(f"{'run':<40}{'server':>8}{'broker':>8}{'loadgen':>9}{'others':>8}{'server ms/req':>15}")
for k in rows:
    c, r = cpu[k], rows[k]; w = c["Wall"] * 100
    srv, brk, lgc, mach = c["Server"] / w, c["Broker"] / w, r.get("CPUSeconds", 0) / c["Wall"], c["Machine"] / w
    print(f"{k:<40}{srv:>8.2f}{brk:>8.2f}{lgc:>9.2f}{max(0, mach - srv - brk - lgc):>8.2f}{c['Server'] * 10 / max(1, r['Sent']):>15.3f}")
print(f"\ningress/echo flat-out throughput: {ratio:.0%} (target >= 40%)")
print(f"ingress p99 at {rate}/s: {rows[f'ingress-{rate}']['P99ms']:.2f} ms (target <= 20 ms)")

# Server-side view of the fixed-rate run, from histogram deltas (bucket upper bounds).
def buckets(path, name):
    acc = {}
    for line in open(path):
        if line.startswith(name + "_bucket{") and 'outcome="ok"' in line:
            le = float(re.search(r'le="([^"]+)"', line).group(1))
            acc[le] = acc.get(le, 0) + float(line.rsplit(" ", 1)[1])
    return acc
def q(delta, p):
    total = max(delta.values())
    for le in sorted(delta):
        if delta[le] >= p * total:
            return le * 1000
import glob
for before in sorted(glob.glob(f"{out}/*-metrics-before-rate.txt")):
    run = before[len(out) + 1:-len("-metrics-before-rate.txt")]
    for name in ["ingress_request_seconds", "ingress_kafka_write_seconds"]:
        b0, b1 = buckets(before, name), buckets(before.replace("before", "after"), name)
        d = {le: b1[le] - b0.get(le, 0) for le in b1}
        if d and max(d.values()) > 0:
            print(f"{run} server side at {rate}/s, {name}: p50 <= {q(d, .5):g} ms, p99 <= {q(d, .99):g} ms, p999 <= {q(d, .999):g} ms")
try:
    print(f"mean ingress envelope on the topic: {open(f'{out}/envelope-bytes.txt').read().strip()} B (kafka-producer used {sys.argv[3]} B)")
except OSError:
    pass
print(f"artifacts: {out}")
PY
