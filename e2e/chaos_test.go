package e2e_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/e2e/chaos"
	"github.com/orderpipe/pipeline/e2e/stack"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// chaosEnv is what a fault sees of its run.
type chaosEnv struct {
	t      *testing.T
	p      *pipeline
	broker *testenv.Broker      // the test's own broker, for broker scenarios
	redis  *testenv.RedisServer // the test's own Redis, for Redis scenarios
	sb     chaos.Sandbox
	col    *chaos.Collector
	d      time.Duration // load duration
	rng    *rand.Rand
	mu     sync.Mutex
	log    []string
}

func (e *chaosEnv) note(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
}

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

type scenario struct {
	name               string
	ownKafka, ownRedis bool
	fault              func(ctx context.Context, e *chaosEnv)
	// costs names a check that this scenario is known to cost and reports instead of failing on.
	costs string
	// elemePull starts the Eleme OpenAPI sandbox and the compensation poller: Eleme callbacks
	// that cannot reach the ingress are held by the sandbox and pulled.
	elemePull bool
	// minLoad stretches a short run so that the fault happens several times (a killed consumer
	// needs a few seconds to get its partitions back before it is worth killing again).
	minLoad time.Duration
}

// killLoop kills the service with SIGKILL at random moments and restarts it, until ctx ends.
// After a restart it waits until the pipeline makes progress again (progress grows: the
// restarted consumer got its partitions back), so that every kill lands on a working service,
// possibly between a produce and its offset commit.
func killLoop(pick func(e *chaosEnv) *stack.Service, progress func(e *chaosEnv) int) func(ctx context.Context, e *chaosEnv) {
	return func(ctx context.Context, e *chaosEnv) {
		for {
			// Several kills per run: every d/12..d/6 (at least 0.5..1 s apart).
			lo := max(500*time.Millisecond, e.d/12)
			if !sleep(ctx, lo+time.Duration(e.rng.Int64N(int64(lo)))) {
				return
			}
			s := pick(e)
			if err := kill9Restart(s, time.Duration(100+e.rng.IntN(400))*time.Millisecond, e.note); err != nil {
				e.t.Error(err)
				return
			}
			if progress == nil {
				e.note("%s ready again", s.Name)
				continue
			}
			start, n0 := time.Now(), progress(e)
			for progress(e) == n0 && time.Since(start) < 45*time.Second && sleep(ctx, 50*time.Millisecond) {
			}
			e.note("%s ready again, making progress after %s", s.Name, time.Since(start).Round(10*time.Millisecond))
		}
	}
}

// kill9Restart kills s with SIGKILL, waits pause, starts it again and waits, a minute at most,
// until it is ready.
func kill9Restart(s *stack.Service, pause time.Duration, note func(format string, args ...any)) error {
	_ = s.Kill()
	note("kill -9 %s", s.Name)
	time.Sleep(pause)
	if err := s.Start(); err != nil {
		return fmt.Errorf("restart %s: %w", s.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		return fmt.Errorf("%s not ready after restart: %w", s.Name, err)
	}
	return nil
}

func statusProgress(e *chaosEnv) int  { n, _ := e.col.Counts(); return n }
func resultsProgress(e *chaosEnv) int { _, n := e.col.Counts(); return n }

// sandboxFault arms a sandbox fault for a window in the middle of the run, then clears it; in a
// long run it does so repeatedly.
func sandboxFault(kind string, extra map[string]any) func(ctx context.Context, e *chaosEnv) {
	return func(ctx context.Context, e *chaosEnv) {
		defer func() { _ = e.sb.ClearFaults(context.Background()) }()
		window := max(e.d/4, 2*time.Second)
		for {
			if !sleep(ctx, window/2) {
				return
			}
			f := map[string]any{"kind": kind}
			for k, v := range extra {
				f[k] = v
			}
			if err := e.sb.Fault(ctx, f); err != nil {
				e.t.Errorf("arm %s: %v", kind, err)
				return
			}
			e.note("sandbox %s armed", kind)
			ok := sleep(ctx, min(window, 20*time.Second))
			_ = e.sb.ClearFaults(context.Background())
			e.note("sandbox %s cleared", kind)
			if !ok {
				return
			}
		}
	}
}

var scenarios = []scenario{
	{name: "baseline"},
	{name: "kill-ingress", fault: killLoop(func(e *chaosEnv) *stack.Service { return e.p.ingress }, nil)},
	{name: "kill-normalizer", fault: killLoop(func(e *chaosEnv) *stack.Service { return e.p.normalizer }, statusProgress), minLoad: 20 * time.Second},
	{name: "kill-dispatcher", fault: killLoop(func(e *chaosEnv) *stack.Service { return e.p.dispatcher }, resultsProgress), minLoad: 20 * time.Second},
	{name: "kafka-restart", ownKafka: true, fault: func(ctx context.Context, e *chaosEnv) {
		for sleep(ctx, max(e.d/4, time.Second)) {
			e.broker.Stop()
			e.note("broker stopped")
			sleep(ctx, 2*time.Second)
			e.broker.Restart()
			e.note("broker restarted")
			if e.d < 30*time.Second {
				return
			}
		}
	}},
	{name: "redis-restart", ownRedis: true, costs: "wrong-final", fault: func(ctx context.Context, e *chaosEnv) {
		for sleep(ctx, max(e.d/4, time.Second)) {
			e.redis.Stop()
			e.note("redis stopped")
			time.Sleep(1500 * time.Millisecond)
			e.redis.Start()
			e.note("redis started, empty")
		}
	}},
	{name: "redis-flush", ownRedis: true, costs: "wrong-final", fault: func(ctx context.Context, e *chaosEnv) {
		for sleep(ctx, max(e.d/3, time.Second)) {
			e.note("FLUSHALL: %s", e.redis.Command("FLUSHALL"))
		}
	}},
	{name: "dangdang-5xx", fault: sandboxFault("http_5xx", map[string]any{"status": 503})},
	{name: "dangdang-timeout", fault: sandboxFault("timeout", nil)},
	{name: "dangdang-rate-limit", fault: sandboxFault("rate_limit", nil)},
	{name: "dangdang-176", fault: sandboxFault("expired", nil)},
	// The ingress is down for a while; Eleme keeps the pushes it could not deliver (the sandbox
	// holds them) and elemepull brings them in. Every transition must still be on the status
	// topic exactly once; Dianwoda's callbacks wait for the ingress, retried as before.
	{name: "eleme-pull", elemePull: true, fault: func(ctx context.Context, e *chaosEnv) {
		for sleep(ctx, max(e.d/4, time.Second)) {
			if err := e.p.ingress.Stop(20 * time.Second); err != nil {
				e.t.Errorf("stop ingress: %v", err)
				return
			}
			e.note("ingress stopped")
			sleep(ctx, min(max(e.d/3, 2*time.Second), 20*time.Second))
			if err := e.p.ingress.Start(); err != nil {
				e.t.Errorf("start ingress: %v", err)
				return
			}
			rctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			err := e.p.ingress.WaitReady(rctx)
			cancel()
			if err != nil {
				e.t.Errorf("ingress not ready again: %v", err)
				return
			}
			e.note("ingress started again")
		}
	}},
	{name: "rebalance", fault: func(ctx context.Context, e *chaosEnv) {
		if !sleep(ctx, e.d/3) {
			return
		}
		n2, d2 := e.p.addInstance("normalizer"), e.p.addInstance("dispatcher")
		e.note("started %s and %s", n2.Name, d2.Name)
		if !sleep(ctx, e.d/3) {
			return
		}
		if err := e.p.normalizer.Stop(20 * time.Second); err != nil {
			e.t.Errorf("stop normalizer: %v", err)
		}
		if err := e.p.dispatcher.Stop(20 * time.Second); err != nil {
			e.t.Errorf("stop dispatcher: %v", err)
		}
		e.note("stopped the first normalizer and dispatcher")
	}},
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v := os.Getenv(name); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	return def
}

// TestChaos runs every fault scenario against the three services as processes, with the
// realistic mix of callbacks, and checks from Kafka and the sandbox that nothing acknowledged
// was lost or duplicated. `make test` runs it short (CHAOS_DURATION 5s per scenario at
// CHAOS_RATE 60/s); `make chaos` runs it long and writes the table to docs/reliability.md
// (CHAOS_DOC).
func TestChaos(t *testing.T) {
	d := envDuration("CHAOS_DURATION", 5*time.Second)
	rate := envFloat("CHAOS_RATE", 60)
	var reports []*chaos.Report
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := runScenario(t, sc, d, rate)
			if r != nil {
				reports = append(reports, r)
			}
		})
	}
	chaosTable.publish(t, reports, d, rate)
}

// chaosTable is the table of TestChaos: one row a scenario, details where a check failed or
// noted something.
var chaosTable = reportTable{name: "chaos", marker: "chaos-table", header: chaos.TableHeader, row: (*chaos.Report).Row,
	detailed: func(r *chaos.Report) bool { return len(r.Details) > 0 || !r.OK() }}

func runScenario(t *testing.T, sc scenario, d time.Duration, rate float64) *chaos.Report {
	d = max(d, sc.minLoad)
	e := &chaosEnv{t: t, d: d, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))}
	o := stackOpts{partitions: 6, quiet: d > 30*time.Second, dispatcherEnv: []string{
		"DANGDANG_TIMEOUT=1s", "DANGDANG_BACKOFF_MIN=100ms", "DANGDANG_BACKOFF_MAX=2s", "DANGDANG_MAX_ATTEMPTS=200",
		"DANGDANG_RATE_LIMIT_BACKOFF=1s", "DANGDANG_PAUSE_PROBE=1s",
	}}
	if sc.ownKafka {
		e.broker = testenv.OwnKafka(t)
		o.brokers = e.broker.Brokers
	}
	if sc.ownRedis {
		e.redis = testenv.OwnRedis(t)
		o.redisAddr = e.redis.Addr
	}
	p := startStack(t, o)
	e.p, e.sb = p, chaos.Sandbox{URL: p.sandboxURL}
	col := chaos.StartCollector(p.kafka, chaos.Topics{Raw: p.topics.Raw, RawDLQ: p.topics.RawDLQ, Status: p.topics.Status,
		Results: p.topics.Results, StatusDLQ: p.topics.StatusDLQ}, p.partitions)
	defer col.Stop()
	e.col = col

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopFault, waitFault := startFault(ctx, d, sc.fault, e)
	defer stopFault()
	cfg := chaos.Config{
		IngressURL: p.ingressURL, Rate: rate, Duration: d, Drain: max(60*time.Second, d), Workers: 16, Mix: chaos.DefaultMix,
		Signer: chaos.Signer{DianwodaSecret: testDianwodaSecret, ElemeAppID: testElemeAppID, ElemeSecret: testElemeSecret},
	}
	if sc.elemePull {
		r := startElemeSandbox(t, p)
		r.startPoller(t, r.poller("", "ELEME_PULL_INTERVAL=1s"))
		cfg.ElemeHold = r.holdBody
	}
	l := chaos.Drive(ctx, cfg)
	if sc.elemePull {
		e.note("%d Eleme callbacks held by the platform and pulled", l.HeldByPlatform.Load())
	}
	stopFault()
	waitFault()
	settled, why := chaos.Settle(ctx, l, col, 2*time.Second, max(90*time.Second, d))
	r := chaos.Check(ctx, sc.name, l, col, e.sb)
	judge(t, sc.name, e.log, r, l, settled, why, sc.costs == "wrong-final", "losing Redis (the order guard forgot)")
	return r
}

// startFault runs fault (when there is one) with e in the background for the load's duration d
// at most; stop ends it early, wait waits until it has returned.
func startFault[E any](ctx context.Context, d time.Duration, fault func(context.Context, E), e E) (stop, wait func()) {
	faultCtx, stop := context.WithTimeout(ctx, d)
	var wg sync.WaitGroup
	if fault != nil {
		wg.Go(func() { fault(faultCtx, e) })
	}
	return stop, wg.Wait
}

// judge logs a scenario's notes and report and fails the test where the run went wrong: it did
// not settle, nothing was acknowledged, or a check failed. Where guardCost allows it, wrong final
// states and order violations with nothing lost or duplicated are the known cost of the order
// guard losing its state (cause): the run passes with the cost in r.Cost.
func judge(t *testing.T, name string, notes []string, r *chaos.Report, l *chaos.Ledger, settled bool, why string, guardCost bool, cause string) {
	t.Helper()
	for _, n := range notes {
		t.Log(n)
	}
	t.Log(r.String())
	if !settled {
		t.Errorf("the pipeline did not settle: %s", why)
	}
	if l.Acked.Load() == 0 {
		t.Errorf("nothing was acknowledged: %v", l.Statuses())
	}
	if r.OK() {
		return
	}
	if guardCost && r.Lost == 0 && r.Duplicated == 0 {
		cp := *r
		cp.WrongFinal, cp.OrderViolations, cp.RoutedViolations = 0, 0, 0 // all come from the guard forgetting
		if cp.OK() {
			t.Logf("%s: %d orders with a wrong final state, %d order violations: the known cost of %s", name, r.WrongFinal, r.OrderViolations, cause)
			r.Cost = fmt.Sprintf("%d wrong final, %d order violations (guard state lost)", r.WrongFinal, r.OrderViolations)
			return
		}
	}
	t.Errorf("%s: checks failed (see the report above)", name)
}

// reportTable is how a suite's reports are tabulated: the table's header and one row a report,
// and between which markers of CHAOS_DOC the table goes.
type reportTable struct {
	name, marker, header string
	row                  func(*chaos.Report) string
	loadNote             string                   // after "of load each" in the heading
	detailed             func(*chaos.Report) bool // whose details follow the table
}

// publish logs the table of reports and, when CHAOS_DOC names a document, writes it there.
func (rt reportTable) publish(t *testing.T, reports []*chaos.Report, d time.Duration, rate float64) {
	if len(reports) == 0 {
		return
	}
	var b strings.Builder
	b.WriteString(rt.header)
	for _, r := range reports {
		b.WriteString(rt.row(r))
	}
	t.Logf("%s results (%s per scenario at %.0f callbacks/s):\n%s", rt.name, d, rate, b.String())
	if doc := os.Getenv("CHAOS_DOC"); doc != "" {
		if err := rt.splice(doc, d, rate, reports, b.String()); err != nil {
			t.Error(err)
		}
	}
}

// splice replaces the text between the <!-- marker:begin --> and <!-- marker:end --> markers
// of doc with a heading, the table and the details.
func (rt reportTable) splice(doc string, d time.Duration, rate float64, reports []*chaos.Report, table string) error {
	b, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	begin, end := "<!-- "+rt.marker+":begin -->", "<!-- "+rt.marker+":end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s: markers %s … %s not found", doc, begin, end)
	}
	var total time.Duration
	for _, r := range reports {
		total += r.Duration
	}
	host, _ := os.Hostname()
	head := fmt.Sprintf("Run of %s (UTC) on %s: %d scenarios, %s of load each%s at %.0f new callbacks/s (plus the drain), %s of load in all.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04"), host, len(reports), d, rt.loadNote, rate, total.Round(time.Second))
	var details strings.Builder
	for _, r := range reports {
		if rt.detailed(r) {
			fmt.Fprintf(&details, "\n<details><summary>%s: details</summary>\n\n```\n%s\n```\n</details>\n", r.Scenario, r.String())
		}
	}
	s = s[:i+len(begin)] + "\n" + head + table + details.String() + s[j:]
	return os.WriteFile(doc, []byte(s), 0o644)
}
