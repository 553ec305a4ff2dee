package e2e_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/e2e/chaos"
	"github.com/orderpipe/pipeline/e2e/stack"
	"github.com/orderpipe/pipeline/e2e/topo"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// benchRow is one rate of the system benchmark, as e2e/bench/system.sh tabulates it.
type benchRow struct {
	Rate        float64 `json:"rate"`    // offered callbacks/s
	Offered     int64   `json:"offered"` // due times the pacer emitted
	Late        int64   `json:"late"`    // due times that waited for the cap on requests in flight
	Seconds     float64 `json:"seconds"` // the generator's run: the paced window and the unpaced finish
	Paced       float64 `json:"paced_seconds"`
	Acked       int64   `json:"acked"`
	AckedPerSec float64 `json:"acked_per_sec"`
	Refused     int64   `json:"refused"`
	Transitions int     `json:"transitions"`
	Lost        int     `json:"lost"`
	Duplicated  int     `json:"duplicated"`
	EventP50MS  float64 `json:"event_p50_ms"`
	EventP99MS  float64 `json:"event_p99_ms"`
	EventMaxMS  float64 `json:"event_max_ms"`
	// EventWrittenP50MS and EventWrittenP99MS: reply → the normalizer's write of the event (its
	// record timestamp), the pipeline's part of the event delay without the collector's reading.
	EventWrittenP50MS float64 `json:"event_written_p50_ms"`
	EventWrittenP99MS float64 `json:"event_written_p99_ms"`
	DDOrders          int     `json:"dd_orders"`
	DDP50MS           float64 `json:"dd_p50_ms"`
	DDP99MS           float64 `json:"dd_p99_ms"`
	DDCalls           int     `json:"dd_calls"` // the sandbox calls that carried this rate's orders
	// DDOrdersPerCall is the Dangdang-routed orders delivered per sandbox call of this rate.
	DDOrdersPerCall float64 `json:"dd_orders_per_call"`
	SettleSeconds   float64 `json:"settle_seconds"`
	ReplyP50MS      float64 `json:"reply_p50_ms"` // from the due time
	ReplyP99MS      float64 `json:"reply_p99_ms"`
	// SendDelayP50MS and SendDelayP99MS: due time → the first attempt sent (chaos.Ledger's
	// SendDelay), the generator's own part of the reply latency.
	SendDelayP50MS float64 `json:"send_delay_p50_ms"`
	SendDelayP99MS float64 `json:"send_delay_p99_ms"`
	// CPUWindowSeconds is the wall time the processes' CPU is measured over: from the start of
	// the load until every acknowledged transition was seen on the output topics.
	CPUWindowSeconds float64 `json:"cpu_window_seconds"`
	// CPUCores is each process's CPU time over its window divided by the window: the cores it
	// used. The generator (its own process) is measured over its run; "collector" is the test
	// process, which then runs only the collector.
	CPUCores map[string]float64 `json:"cpu_cores"`
	// CPUPerCallbackUS is each process's CPU time over the window per acknowledged callback.
	CPUPerCallbackUS map[string]float64 `json:"cpu_us_per_callback"`
	// CPUIdleCores is each process's cores over 2 s of no load just before the measured run
	// (after the warm-up): the baseline that the figures above include.
	CPUIdleCores map[string]float64 `json:"cpu_idle_cores"`
	// IngressOutcomes counts the ingress's replies during the run by outcome (its
	// ingress_requests_total): why callbacks were refused (busy, kafka_unavailable, …).
	IngressOutcomes map[string]int64 `json:"ingress_outcomes"`
	// MachineMBps is the machine's speed just before the rate, after the idle baseline: SHA-256
	// over 32 MiB on one core, in MB/s (machineSpeed). This VM's speed drifts by up to half
	// within one session, which moves every figure of a row; compare rows of similar speed.
	MachineMBps float64 `json:"machine_sha256_mbps"`
}

// machineSpeed hashes 32 MiB with SHA-256 on one core and returns MB/s: a fixed piece of CPU
// work whose rate tells how fast the machine is running right now.
func machineSpeed() float64 {
	buf := make([]byte, 32<<20)
	start := time.Now()
	_ = sha256.Sum256(buf)
	return float64(len(buf)) / 1e6 / time.Since(start).Seconds()
}

// TestSystemBench is the system benchmark (`make bench` via e2e/bench/system.sh): the whole
// pipeline as processes on the real broker, driven by an open-loop generator (chaos.DriveOpen,
// in a process of its own so its CPU is its own) at each of BENCH_RATES offered callbacks/s for
// BENCH_DURATION (a rate written rate:duration is held that long instead) with well-behaved
// traffic (every order walks its flow; no faults, no forged or poison records). It measures the acknowledged rate, the success reply's latency from each
// callback's due time, the delay from the success reply to the unified event and to Dangdang's
// acceptance, and the CPU of every process: the generator, the collector, the services, the
// broker and Redis. It writes one JSON line per rate to BENCH_OUT. Skipped unless
// BENCH_SYSTEM=1: it is a measurement, not a test.
func TestSystemBench(t *testing.T) {
	if os.Getenv("BENCH_SYSTEM") != "1" {
		t.Skip("BENCH_SYSTEM=1 runs the system benchmark (make bench)")
	}
	d := envDuration("BENCH_DURATION", 20*time.Second)
	var out *os.File
	if p := os.Getenv("BENCH_OUT"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		out = f
	}
	infra := infraPids(t)
	// Each of BENCH_RATES is a rate, or rate:duration for a rate held longer (6000:60s).
	for _, rs := range strings.Fields(envString("BENCH_RATES", "100 1000 2000 4000")) {
		rateS, durS, long := strings.Cut(rs, ":")
		rate, err := strconv.ParseFloat(rateS, 64)
		if err != nil {
			t.Fatalf("BENCH_RATES %q: %v", rs, err)
		}
		d := d
		if long {
			if d, err = time.ParseDuration(durS); err != nil {
				t.Fatalf("BENCH_RATES %q: %v", rs, err)
			}
		}
		t.Run(rs, func(t *testing.T) {
			// The dispatcher's Dangdang batch window as shipped (1 s), not the 200 ms of the test
			// stack: orders per call and reply → Dangdang accepted are measured against it. The
			// ingress and the normalizer with the GOGC they are deployed with
			// (deploy/k8s/base/ingress.yaml, normalizer.yaml, docker-compose.yml).
			// BENCH_PRODUCER_LINGER and BENCH_COMMIT_INTERVAL, when set, replace the shipped
			// defaults (A/Bs of the producers' linger and the normalizer's commit pace);
			// BENCH_INGRESS_ENV and BENCH_DISPATCHER_ENV add NAME=VALUE pairs to the ingress's
			// and the dispatcher's environment (e.g. the dispatcher's lingers' A/B, or
			// INGRESS_LOG_ACCEPTED=all to time every request from the ingress's side);
			// BENCH_LOG_DIR keeps the processes' logs there (one folder per rate).
			linger := benchEnv("BENCH_PRODUCER_LINGER", "KAFKA_PRODUCER_LINGER")
			var logDir string
			if d := os.Getenv("BENCH_LOG_DIR"); d != "" {
				logDir = filepath.Join(d, strconv.FormatFloat(rate, 'f', -1, 64))
				if err := os.MkdirAll(logDir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			p := startStack(t, stackOpts{partitions: 12, quiet: true, logDir: logDir,
				dispatcherEnv: slices.Concat([]string{"DANGDANG_BATCH_WINDOW=" + envString("BENCH_DD_WINDOW", "1s")}, linger, strings.Fields(os.Getenv("BENCH_DISPATCHER_ENV"))),
				ingressEnv:    slices.Concat([]string{"GOGC=400"}, linger, strings.Fields(os.Getenv("BENCH_INGRESS_ENV"))),
				normalizerEnv: slices.Concat([]string{"GOGC=200"}, linger, benchEnv("BENCH_COMMIT_INTERVAL", "COMMIT_INTERVAL"))})
			// The rate's topics (8 of 12 partitions) go when it ends, after its processes: on a
			// long-lived bench broker (system.sh with KAFKA_BROKERS) they piled up run after run,
			// and the broker's young collections lengthened with them (about 20 → 45 ms each
			// over one session's runs, with 73 topics), which the next runs' latencies carried.
			t.Cleanup(func() { p.deleteTopics() })
			// The raw topic is not read: the bench sends no forged or malformed callbacks, the
			// only ones the raw records are checked for, and reading it cost the collector 0.06 of
			// the machine's 2 cores during the load at 2,000 and at 4,000/s, with the broker's
			// fetches for it on top (the raw DLQ is still read: poison and unexpected records).
			col := chaos.StartCollector(p.kafka, chaos.Topics{RawDLQ: p.topics.RawDLQ, Status: p.topics.Status,
				Results: p.topics.Results, StatusDLQ: p.topics.StatusDLQ}, p.partitions)
			defer col.Stop()
			signer := chaos.Signer{DianwodaSecret: testDianwodaSecret, ElemeAppID: testElemeAppID, ElemeSecret: testElemeSecret}
			mix := chaos.Mix{DDShare: 0.3}
			ctx := context.Background()
			// Warm up: the consumer groups join, the connections open, and every partition of the
			// rate's new topics takes its first few KiB before the measurement. The broker's first
			// appends to a freshly created partition were slow on this machine: its request log
			// put 8-36 ms of local append time on the produce requests of the first 150 ms of
			// load, under 1 ms after, and the first 100 ms of replies took 5-19 ms at the median
			// against ~3 ms after; with the broker's log on tmpfs, 3-5 ms (likely the first
			// touch of each new segment's index pages waiting on the filesystem's journal).
			// 50/s for 2 s is a few dozen orders, which left many of the 12 partitions of each
			// topic nearly untouched; at 500/s the first 100 ms took 2.4-3.0 ms at the median
			// (docs/performance-history.md, seventh session). Long-lived topics, as in production, have
			// long passed that point. BENCH_WARM_RATE overrides it.
			warmRate, err := strconv.ParseFloat(envString("BENCH_WARM_RATE", "500"), 64)
			if err != nil || warmRate <= 0 {
				t.Fatalf("BENCH_WARM_RATE=%q: want callbacks per second", os.Getenv("BENCH_WARM_RATE"))
			}
			warm := chaos.DriveOpen(ctx, chaos.Config{IngressURL: p.ingressURL, Rate: warmRate, Duration: 2 * time.Second, Mix: mix, Signer: signer})
			if ok, why := chaos.Settle(ctx, warm, col, 500*time.Millisecond, 60*time.Second); !ok {
				t.Fatalf("warm-up did not settle: %s", why)
			}
			col.Reset()

			// The collector, too, measures: no collection while it does (see measuringGCOff).
			gcOn := measuringGCOff()
			defer gcOn()
			procs := append([]benchProc{{"ingress", p.ingress.Pid()}, {"normalizer", p.normalizer.Pid()},
				{"dispatcher", p.dispatcher.Pid()}, {"sandbox", p.sandbox.Pid()}, {"collector", os.Getpid()}}, infra...)
			// The baseline: what each process uses with no load at all (polls, timers, the broker's
			// own housekeeping), over 2 s.
			idle0, idleStart := cpuTimes(procs), time.Now()
			time.Sleep(2 * time.Second)
			idle1, idleWall := cpuTimes(procs), time.Since(idleStart)
			speed := machineSpeed()
			ingressMetrics := strings.TrimSuffix(p.ingress.ReadyURL, "/readyz") + "/metrics"
			outcomes0 := ingressOutcomes(t, ingressMetrics)
			cpu0, t0 := cpuTimes(procs), time.Now()
			l, genCPU := driveOpenProcess(t, openLoad{URL: p.ingressURL, Rate: rate, Duration: d, DDShare: mix.DDShare,
				Profile: profilePath(os.Getenv("BENCH_GEN_CPUPROFILE"), rate)})
			loadEnd := time.Now()
			// The CPU window ends when everything acknowledged has come out; then the topics must
			// stay quiet a second, so that late copies are counted too.
			ok, why := chaos.Settle(ctx, l, col, 0, 120*time.Second)
			cpu1, window := cpuTimes(procs), time.Since(t0)
			gcOn()
			settle := time.Since(loadEnd)
			if ok {
				ok, why = chaos.Settle(ctx, l, col, time.Second, 30*time.Second)
			}
			if !ok {
				t.Errorf("did not settle: %s", why)
			}
			outcomes := ingressOutcomes(t, ingressMetrics)
			for k, v := range outcomes0 {
				outcomes[k] -= v
			}
			r := chaos.Check(ctx, "bench", l, col, chaos.Sandbox{URL: p.sandboxURL})
			t.Log(r.String())
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			row := benchRow{Rate: rate, Offered: l.Offered.Load(), Late: l.Late.Load(), Seconds: l.Finished.Sub(l.Started).Seconds(),
				Acked: l.Acked.Load(), Refused: l.Refused.Load(), Transitions: r.Expected, Lost: r.Lost, Duplicated: r.Duplicated,
				EventP50MS: ms(r.P50), EventP99MS: ms(r.P99), EventMaxMS: ms(r.MaxDelay),
				EventWrittenP50MS: ms(r.WrittenP50), EventWrittenP99MS: ms(r.WrittenP99),
				DDOrders: r.DDOrders, DDP50MS: ms(r.DDP50), DDP99MS: ms(r.DDP99), DDCalls: r.DDCallsOwn, SettleSeconds: settle.Seconds(),
				CPUWindowSeconds: window.Seconds(), CPUCores: map[string]float64{}, CPUPerCallbackUS: map[string]float64{}, CPUIdleCores: map[string]float64{}, IngressOutcomes: outcomes, MachineMBps: speed}
			// Per call of this rate's load: the sandbox's calls of the warm-up (a few, part-full
			// at 500/s) were counted against it before (eighth session).
			if r.DDCallsOwn > 0 {
				row.DDOrdersPerCall = float64(r.DDOrders) / float64(r.DDCallsOwn)
			}
			// The sustained rate counts what was acknowledged inside the paced window, not the
			// unpaced finish of the last orders' flows.
			row.AckedPerSec = float64(l.AckedBetween(l.Started, l.Started.Add(d))) / d.Seconds()
			row.Paced = d.Seconds()
			rp50, rp99 := l.ReplyQuantiles()
			row.ReplyP50MS, row.ReplyP99MS = ms(rp50), ms(rp99)
			sp50, sp99 := l.SendDelayQuantiles()
			row.SendDelayP50MS, row.SendDelayP99MS = ms(sp50), ms(sp99)
			acked := float64(max(1, l.Acked.Load()))
			perCallback := func(cpu time.Duration) float64 { return float64(cpu.Microseconds()) / acked }
			for _, pr := range procs {
				c0, ok0 := cpu0[pr.name]
				c1, ok1 := cpu1[pr.name]
				if !ok0 || !ok1 {
					continue
				}
				row.CPUCores[pr.name] = (c1 - c0).Seconds() / window.Seconds()
				if i0, ok := idle0[pr.name]; ok {
					row.CPUIdleCores[pr.name] = (idle1[pr.name] - i0).Seconds() / idleWall.Seconds()
				}
				row.CPUPerCallbackUS[pr.name] = perCallback(c1 - c0)
			}
			row.CPUCores["generator"] = genCPU.Seconds() / l.Finished.Sub(l.Started).Seconds()
			row.CPUPerCallbackUS["generator"] = perCallback(genCPU)
			t.Logf("offered %d late %d acked/s %.0f reply p50/p99 %.1f/%.1f ms cores %v", row.Offered, row.Late, row.AckedPerSec,
				row.ReplyP50MS, row.ReplyP99MS, row.CPUCores)
			if r.Lost != 0 || r.Duplicated != 0 {
				t.Errorf("lost %d duplicated %d", r.Lost, r.Duplicated)
			}
			if base := os.Getenv("BENCH_REPLY_TRACE"); base != "" {
				writeReplyTrace(t, profilePath(base, rate), l, r.FirstWritten)
			}
			if out != nil {
				b, _ := json.Marshal(row)
				_, _ = out.Write(append(b, '\n'))
			}
		})
	}
}

// ingressOutcomes reads the ingress's ingress_requests_total from its /metrics, summed over
// platforms, by outcome.
func ingressOutcomes(t *testing.T, url string) map[string]int64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("ingress metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("ingress metrics: %v", err)
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		labels, ok := strings.CutPrefix(line, "ingress_requests_total{")
		if !ok {
			continue
		}
		_, rest, _ := strings.Cut(labels, `outcome="`)
		outcome, _, _ := strings.Cut(rest, `"`)
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil || outcome == "" {
			t.Fatalf("ingress metrics: cannot read %q", line)
		}
		m[outcome] += int64(v)
	}
	return m
}

// benchProc is a process whose CPU the benchmark reports.
type benchProc struct {
	name string
	pid  int
}

// cpuTimes reads each process's CPU time so far (a process that is gone is left out).
func cpuTimes(procs []benchProc) map[string]time.Duration {
	m := map[string]time.Duration{}
	for _, p := range procs {
		if c, ok := topo.CPUTime(p.pid); ok && p.pid > 0 {
			m[p.name] = c
		}
	}
	return m
}

// infraPids finds the broker's and Redis's processes: BENCH_KAFKA_PID / BENCH_REDIS_PID, or the
// pid files deploy/local/kafka.sh and redis.sh keep under ORDERPIPE_ROOT/.run for the ports
// testenv gives. Whichever cannot be found is left out of the CPU figures (and logged).
func infraPids(t *testing.T) []benchProc {
	root := os.Getenv("ORDERPIPE_ROOT")
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	find := func(name, env, pidFile string) []benchProc {
		v := os.Getenv(env)
		if v == "" && root != "" {
			b, _ := os.ReadFile(filepath.Join(root, ".run", pidFile))
			v = strings.TrimSpace(string(b))
		}
		pid, err := strconv.Atoi(v)
		if err != nil || pid <= 0 {
			t.Logf("no pid for %s (set %s): its CPU is not reported", name, env)
			return nil
		}
		return []benchProc{{name, pid}}
	}
	return append(find("kafka", "BENCH_KAFKA_PID", "kafka-"+port(testenv.Kafka(t)[0])+"/pid"),
		find("redis", "BENCH_REDIS_PID", "redis-"+port(testenv.Redis(t))+"/redis.pid")...)
}

// openLoad is what the generator process is told (E2E_OPENLOAD, as JSON).
type openLoad struct {
	URL      string        `json:"url"`
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration"`
	DDShare  float64       `json:"dd_share"`
	// Ledger is the file the generator writes its ledger to; CPU the file it writes its CPU
	// time over the run to (nanoseconds).
	Ledger string `json:"ledger"`
	CPU    string `json:"cpu"`
	// Profile, when set, is where the generator writes a CPU profile of its run
	// (BENCH_GEN_CPUPROFILE; the rate is appended to the name).
	Profile string `json:"profile,omitempty"`
}

// measuringMemoryLimit is the heap a measuring process may grow to before it collects at all
// (measuringGCOff). A 60 s run at 6,000/s allocates about 2.1 GB in the generator and 2.3 GB in
// the test process (the collector).
const measuringMemoryLimit = 4 << 30

// measuringGCOff turns off the garbage collector of a measuring process (the generator, the
// collector) for a rate's load, up to measuringMemoryLimit, unless GOGC or GOMEMLIMIT is set
// (then the environment's settings stand). Both keep everything they saw until the checks, so
// their live heaps grow with the run: the generator's to 157 MB 55 s into a 60 s run at
// 6,000/s, where one cycle of its collector (at the GOGC 400 it ran with before) marked for
// 345 ms and took 204 ms of its goroutines' time in assists. Its pacer sent nothing for up to
// 31 ms during such cycles, and in one 100 ms of sends the replies came a median 131 ms after
// their sends while the normalizer had written their events 4.7 ms after: the measuring side's
// pauses counted as the pipeline's latency (docs/performance-history.md, tenth session). The
// processes' CPU is reported either way. It returns a function that restores the previous
// settings and collects; calling that again does nothing.
func measuringGCOff() (restore func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	prevLimit := debug.SetMemoryLimit(measuringMemoryLimit)
	prevPercent := debug.SetGCPercent(-1)
	done := false
	return func() {
		if done {
			return
		}
		done = true
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
		runtime.GC()
	}
}

// driveOpenProcess runs chaos.DriveOpen in a process of its own (this test binary again, see
// TestMain), so that its CPU is the generator's alone, and returns its ledger and that CPU time.
func driveOpenProcess(t *testing.T, o openLoad) (*chaos.Ledger, time.Duration) {
	t.Helper()
	dir := t.TempDir()
	o.Ledger, o.CPU = filepath.Join(dir, "ledger.gob"), filepath.Join(dir, "cpu")
	spec, _ := json.Marshal(o)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "E2E_OPENLOAD="+string(spec))
	if g := os.Getenv("BENCH_GEN_GODEBUG"); g != "" {
		cmd.Env = append(cmd.Env, "GODEBUG="+g) // e.g. gctrace=1, with BENCH_GEN_LOG
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("generator process: %v\n%s", err, out)
	}
	if f := profilePath(os.Getenv("BENCH_GEN_LOG"), o.Rate); f != "" {
		if err := os.WriteFile(f, out, 0o600); err != nil {
			t.Errorf("BENCH_GEN_LOG: %v", err)
		}
	}
	f, err := os.Open(o.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := chaos.LoadLedger(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(o.CPU)
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return l, time.Duration(ns)
}

// openLoadMain is the generator process: it drives the ingress open loop as spec says and
// writes the ledger and its own CPU time over the run. It returns the exit code.
func openLoadMain(spec string) int {
	var o openLoad
	if err := json.Unmarshal([]byte(spec), &o); err != nil {
		fmt.Fprintln(os.Stderr, "generator: decode spec:", err)
		return 2
	}
	selfCPU := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if o.Profile != "" {
		f, err := os.Create(o.Profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "generator:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "generator:", err)
			return 1
		}
	}
	measuringGCOff()
	c0 := selfCPU()
	l := chaos.DriveOpen(context.Background(), chaos.Config{IngressURL: o.URL, Rate: o.Rate, Duration: o.Duration,
		Mix: chaos.Mix{DDShare: o.DDShare}, Signer: chaos.Signer{DianwodaSecret: testDianwodaSecret, ElemeAppID: testElemeAppID, ElemeSecret: testElemeSecret}})
	cpu := selfCPU() - c0
	pprof.StopCPUProfile()
	f, err := os.Create(o.Ledger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "generator:", err)
		return 1
	}
	if err := l.Save(f); err != nil {
		fmt.Fprintln(os.Stderr, "generator:", err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "generator:", err)
		return 1
	}
	if err := os.WriteFile(o.CPU, []byte(strconv.FormatInt(int64(cpu), 10)), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "generator:", err)
		return 1
	}
	return 0
}

// deleteTopics stops the pipeline's processes and deletes its topics.
func (p *pipeline) deleteTopics() {
	for _, s := range []*stack.Service{p.ingress, p.normalizer, p.dispatcher, p.sandbox} {
		// Stopped here, so the process's own cleanup later finds nothing to stop: report a
		// failed stop now.
		if err := s.Stop(20 * time.Second); err != nil {
			p.t.Errorf("stop: %v", err)
		}
	}
	client := p.kafka.NewClient(10 * time.Second)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: p.topics.all()})
	if err != nil {
		p.t.Errorf("delete topics: %v", err)
		return
	}
	for topic, err := range res.Errors {
		if err != nil {
			p.t.Errorf("delete topic %s: %v", topic, err)
		}
	}
}

// writeReplyTrace writes, for every acknowledged transition, when it was first sent, when it was
// acknowledged and when the normalizer wrote its event (Unix µs; 0 when none was seen), so that
// the slowest replies can be lined up with what else happened then (the broker's pauses, a
// profile): BENCH_REPLY_TRACE, the rate appended to the name.
func writeReplyTrace(t *testing.T, path string, l *chaos.Ledger, written map[string]time.Time) {
	var b strings.Builder
	b.WriteString("first_at_us,acked_at_us,written_at_us\n")
	for k, ts := range l.Trans {
		if ts.AckedAt.IsZero() {
			continue
		}
		var w int64
		if at, ok := written[k]; ok {
			w = at.UnixMicro()
		}
		fmt.Fprintf(&b, "%d,%d,%d\n", ts.FirstAt.UnixMicro(), ts.AckedAt.UnixMicro(), w)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Errorf("reply trace: %v", err)
	}
}

// profilePath is the generator's CPU profile for one rate: base with the rate before its
// extension, or "" when base is.
func profilePath(base string, rate float64) string {
	if base == "" {
		return ""
	}
	ext := filepath.Ext(base)
	return strings.TrimSuffix(base, ext) + "-" + strconv.FormatFloat(rate, 'f', -1, 64) + ext
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// benchEnv is the service variable name set to the bench variable bench's value, or nothing
// when bench is unset (the service then runs with its shipped default).
func benchEnv(bench, name string) []string {
	if v := os.Getenv(bench); v != "" {
		return []string{name + "=" + v}
	}
	return nil
}

// TestMeasuringGCOff: the measuring processes' collector is off while they measure, with the
// memory limit as the net, and as before afterwards; an operator's GOGC leaves it alone.
func TestMeasuringGCOff(t *testing.T) {
	t.Setenv("GOGC", "") // an empty value is unset here: the bench's own setting applies
	t.Setenv("GOMEMLIMIT", "")
	percent, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })
	restore := measuringGCOff()
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Errorf("GC percent while measuring: %d, want -1 (off)", p)
	}
	if l := debug.SetMemoryLimit(-1); l != measuringMemoryLimit {
		t.Errorf("memory limit while measuring: %d, want %d", l, measuringMemoryLimit)
	}
	restore()
	restore() // a second call changes nothing
	if p := debug.SetGCPercent(-1); p != 100 {
		t.Errorf("GC percent after: %d, want 100", p)
	}
	debug.SetGCPercent(100)
	t.Setenv("GOGC", "300")
	measuringGCOff()()
	if p := debug.SetGCPercent(-1); p != 100 {
		t.Errorf("with GOGC set the bench changed the GC percent to %d", p)
	}
	debug.SetGCPercent(100)
}
