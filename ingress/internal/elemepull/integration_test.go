package elemepull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/orderpipe/pipeline/ingress/internal/eleme"
	"github.com/orderpipe/pipeline/ingress/internal/elemeapi"
	"github.com/orderpipe/pipeline/ingress/internal/elemesandbox"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

// pushes returns n signed pushes (type 12, one order each), as Eleme would have POSTed them.
func pushes(n int, run string) []json.RawMessage {
	out := make([]json.RawMessage, n)
	for i := range n {
		order := fmt.Sprintf("3%s%04d", run, i)
		body := fmt.Sprintf(`{"appId":62933118,"requestId":"r%s%d","type":12,"message":"{\"orderId\":\"%s\",\"state\":\"valid\",\"shopId\":968861,\"updateTime\":1764468000,\"role\":3}","shopId":968861,"timestamp":1764468000123,"userId":62864532}`, run, i, order)
		out[i] = json.RawMessage(body)
	}
	return out
}

// ackWriter is the real kafka-go writer, recording when each write was acknowledged.
type ackWriter struct {
	w    *kafka.Writer
	mu   sync.Mutex
	acks []time.Time
	errs int
	// failPartOnce: the next write of more than one record writes the first half and fails.
	failPartOnce bool
}

func (a *ackWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	a.mu.Lock()
	part := a.failPartOnce && len(msgs) > 1
	if part {
		a.failPartOnce = false
	}
	a.mu.Unlock()
	if part {
		// What a produce to several partitions does when one partition's leader refuses:
		// some records are written, the call fails.
		err := a.w.WriteMessages(ctx, msgs[:len(msgs)/2]...)
		if err == nil {
			err = errors.New("injected: the second half of the page was not written")
		}
		a.mu.Lock()
		a.errs++
		a.mu.Unlock()
		return err
	}
	err := a.w.WriteMessages(ctx, msgs...)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.errs++
		return err
	}
	a.acks = append(a.acks, time.Now())
	return nil
}

type rig struct {
	t       *testing.T
	sb      *elemesandbox.Sandbox
	api     *elemeapi.Client
	brokers []string
	topic   string
	rdb     redis.UniversalClient
	prefix  string
}

func newRig(t *testing.T, brokers []string) *rig {
	t.Helper()
	r := &rig{t: t, brokers: brokers, topic: testenv.Name(t, "raw"), prefix: testenv.Name(t, "op") + ":"}
	testenv.Topics(t, brokers, 3, r.topic) // readUntil reads these 3 partitions
	r.rdb = redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{testenv.Redis(t)}})
	t.Cleanup(func() { r.rdb.Close() })
	r.sb = elemesandbox.New(elemesandbox.App{AppID: testApp.AppID, AppKey: testApp.AppKey, Secret: testApp.Secret})
	srv := httptest.NewServer(r.sb.Handler())
	t.Cleanup(srv.Close)
	r.api = &elemeapi.Client{URL: srv.URL, Timeout: time.Second}
	return r
}

func (r *rig) writer() *ackWriter {
	w := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: r.brokers, Topic: r.topic, WriteTimeout: 2 * time.Second, MaxAttempts: 1})
	r.t.Cleanup(func() { w.Close() })
	return &ackWriter{w: w}
}

func (r *rig) poller(w Writer, instance string, reg prometheus.Registerer) *Poller {
	r.t.Helper()
	p, err := New(Config{
		Apps: []elemeapi.App{testApp}, API: r.api, Writer: w, Redis: r.rdb, KeyPrefix: r.prefix, Instance: instance,
		Interval: 200 * time.Millisecond, PageSize: 4, LeaseTTL: 3 * time.Second,
		Backoff: retry.Policy{Min: 100 * time.Millisecond, Max: 500 * time.Millisecond}, RateLimitWait: time.Second,
		Metrics: NewMetrics(reg), Log: zaptest.NewLogger(r.t, zaptest.Level(zap.InfoLevel)).Named(instance),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// start runs p until the test ends (or the returned stop is called).
func start(t *testing.T, p *Poller) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readUntil reads the topic from the start, checking each record (checkRecord), until done
// holds for the copies seen per request id (or fails after a while). A pull round whose write
// failed part way is written whole again, so a message may be on the topic more than once and
// a count of records says nothing about how many distinct messages arrived.
func readUntil(t *testing.T, brokers []string, topic string, done func(seen map[string]int) bool) map[string]int {
	t.Helper()
	// Every partition from its first offset, without a consumer group: a group's coordinator
	// answers Group Load In Progress for a while after a broker restart, which failed
	// TestBrokerOutageConfirmsNothing once in make test although every record was there.
	rd := kafkaio.Plaintext(brokers...).NewFetchReader(kafkaio.ReaderConfig{Topic: topic, StartOffset: kafka.FirstOffset},
		0, 1, 2) // rig topics have 3 partitions
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v := eleme.NewVerifier(map[string][]string{testApp.AppID: {testApp.Secret}})
	seen := map[string]int{}
	var last error
	for !done(seen) {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("read %s: got %v so far; last error: %v", topic, seen, last)
			}
			last = err // the reader goes on trying (a broker just back)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		seen[checkRecord(t, v, m)]++
	}
	return seen
}

// distinct is readUntil's condition for n distinct messages.
func distinct(n int) func(map[string]int) bool {
	return func(seen map[string]int) bool { return len(seen) >= n }
}

// checkRecord: the record is a pulled envelope whose body verifies and whose key is the push's
// key; it returns the push's request id.
func checkRecord(t *testing.T, v *eleme.Verifier, m kafka.Message) string {
	t.Helper()
	var env schemas.RawEnvelope
	if err := json.Unmarshal(m.Value, &env); err != nil {
		t.Fatal(err)
	}
	p, err := eleme.ParsePush(env.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(p); err != nil {
		t.Errorf("record body does not verify: %v", err)
	}
	k, _ := eleme.Key(p)
	if env.Source != schemas.SourcePull || string(m.Key) != k.Key || env.OrderID != k.OrderID {
		t.Errorf("record key %s source %q order %s; want key %s source pull", m.Key, env.Source, env.OrderID, k.Key)
	}
	var b struct {
		RequestID string `json:"requestId"`
	}
	_ = json.Unmarshal(env.Body, &b)
	return b.RequestID
}

// TestPullWritesThenConfirms: every held message ends on the raw topic, and each confirm that
// reached Eleme came after a write Kafka acknowledged (never before, never for an unwritten id).
func TestPullWritesThenConfirms(t *testing.T) {
	r := newRig(t, testenv.Kafka(t))
	ids, err := r.sb.Hold(testApp.AppID, pushes(10, "1")...) // 10 at page size 4: three pages
	if err != nil {
		t.Fatal(err)
	}
	w := r.writer()
	reg := prometheus.NewRegistry()
	start(t, r.poller(w, "a", reg))
	waitFor(t, 20*time.Second, "every message confirmed", func() bool { return len(r.sb.HeldMessages("")) == 0 })
	readUntil(t, r.brokers, r.topic, distinct(len(ids)))
	w.mu.Lock()
	acks := append([]time.Time(nil), w.acks...)
	w.mu.Unlock()
	confirms := r.sb.Confirms()
	if len(confirms) != 3 || len(acks) < 3 {
		t.Fatalf("%d confirms and %d acknowledged writes, want 3 pages", len(confirms), len(acks))
	}
	for i, c := range confirms {
		if c.At.Before(acks[i]) {
			t.Errorf("confirm %d at %s came before the write of its page was acknowledged (%s)", i, c.At, acks[i])
		}
	}
	if got := testutil.ToFloat64(NewMetricsFor(reg).confirmedFor(testApp.AppID)); got != 10 {
		t.Errorf("confirmed metric %v, want 10", got)
	}
}

// TestPartialWriteRewritesPage: a page whose write failed part way is not confirmed; it is
// pulled and written whole again, so every message reaches the topic and is confirmed after the
// write that succeeded, never after the one that failed.
func TestPartialWriteRewritesPage(t *testing.T) {
	r := newRig(t, testenv.Kafka(t))
	ids, err := r.sb.Hold(testApp.AppID, pushes(6, "7")...) // pages of 4 and 2
	if err != nil {
		t.Fatal(err)
	}
	w := r.writer()
	w.failPartOnce = true
	start(t, r.poller(w, "a", prometheus.NewRegistry()))
	waitFor(t, 20*time.Second, "every message confirmed", func() bool { return len(r.sb.HeldMessages("")) == 0 })
	// Nothing is missing. (What was written of the first page before the failure is there
	// twice; how much that is depends on the broker too: a fresh topic's broker sometimes
	// refuses a record with Not Leader For Partition, so it is not counted here.)
	readUntil(t, r.brokers, r.topic, distinct(len(ids)))
	w.mu.Lock()
	errs, acks := w.errs, len(w.acks)
	w.mu.Unlock()
	if c := r.sb.Confirms(); errs < 1 || len(c) != acks {
		t.Errorf("%d confirms for %d acknowledged writes (%d failed), want one per acknowledged write and none for a failed one", len(c), acks, errs)
	}
}

// TestBrokerOutageConfirmsNothing stops the broker while messages are held: every round fails
// at the write and nothing is confirmed; once the broker is back, every message is written and
// only then confirmed.
func TestBrokerOutageConfirmsNothing(t *testing.T) {
	b := testenv.OwnKafka(t)
	r := newRig(t, b.Brokers)
	w := r.writer()
	b.Stop()
	ids, _ := r.sb.Hold(testApp.AppID, pushes(5, "2")...)
	start(t, r.poller(w, "a", prometheus.NewRegistry()))
	waitFor(t, 30*time.Second, "two failed writes", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.errs >= 2 })
	if c := r.sb.Confirms(); len(c) != 0 {
		t.Fatalf("confirmed %v while Kafka was down", c)
	}
	if n := len(r.sb.HeldMessages("")); n != len(ids) {
		t.Fatalf("%d messages held, want all %d", n, len(ids))
	}
	b.Restart()
	waitFor(t, 60*time.Second, "every message confirmed after the outage", func() bool { return len(r.sb.HeldMessages("")) == 0 })
	readUntil(t, r.brokers, r.topic, distinct(len(ids)))
}

// TestConfirmFailureRepulls: a confirm that fails (or whose answer is lost) leaves the messages
// held; they are written again and confirmed. Nothing is missing; the copies carry the same key
// and body (the normalizer's dedup makes them one event, see the e2e tests).
func TestConfirmFailureRepulls(t *testing.T) {
	for _, kind := range []string{elemesandbox.FaultConfirmFail, elemesandbox.FaultConfirmFalse} {
		t.Run(kind, func(t *testing.T) {
			r := newRig(t, testenv.Kafka(t))
			ids, _ := r.sb.Hold(testApp.AppID, pushes(3, "3")...)
			if err := r.sb.Inject(elemesandbox.Fault{Kind: kind, Times: 1}); err != nil {
				t.Fatal(err)
			}
			start(t, r.poller(r.writer(), "a", prometheus.NewRegistry()))
			waitFor(t, 20*time.Second, "every message confirmed", func() bool { return len(r.sb.HeldMessages("")) == 0 })
			// Written, not confirmed, written again: at least two copies of each (more if a
			// write failed part way and its page was written whole again).
			readUntil(t, r.brokers, r.topic, func(seen map[string]int) bool {
				if len(seen) < len(ids) {
					return false
				}
				for _, n := range seen {
					if n < 2 {
						return false
					}
				}
				return true
			})
		})
	}
}

// TestOnePollerPerApp runs two pollers for the same app: one holds the lease and polls, the
// other stands by; when the first stops, the second takes over and pulls what is held then.
func TestOnePollerPerApp(t *testing.T) {
	r := newRig(t, testenv.Kafka(t))
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	mA, mB := NewMetricsFor(regA), NewMetricsFor(regB)
	pa := r.poller(r.writer(), "a", regA)
	stopA := start(t, pa)
	waitFor(t, 10*time.Second, "a leads", func() bool { return testutil.ToFloat64(mA.leaderFor(testApp.AppID)) == 1 })
	start(t, r.poller(r.writer(), "b", regB))
	ids, _ := r.sb.Hold(testApp.AppID, pushes(4, "4")...)
	waitFor(t, 10*time.Second, "held messages confirmed", func() bool { return len(r.sb.HeldMessages("")) == 0 })
	time.Sleep(500 * time.Millisecond)
	if testutil.ToFloat64(mB.leaderFor(testApp.AppID)) != 0 || testutil.ToFloat64(mB.pulledFor(testApp.AppID)) != 0 {
		t.Fatal("the standby polled while the leader held the lease")
	}
	stopA() // releases the lease
	waitFor(t, 10*time.Second, "b takes over", func() bool { return testutil.ToFloat64(mB.leaderFor(testApp.AppID)) == 1 })
	more, _ := r.sb.Hold(testApp.AppID, pushes(2, "5")...)
	waitFor(t, 10*time.Second, "b confirms", func() bool { return len(r.sb.HeldMessages("")) == 0 })
	readUntil(t, r.brokers, r.topic, distinct(len(ids)+len(more)))
	if got := testutil.ToFloat64(mB.pulledFor(testApp.AppID)); got != float64(len(more)) {
		t.Errorf("b pulled %v, want %d", got, len(more))
	}
}

// TestExceedLimitBacksOff: while Eleme answers EXCEED_LIMIT, the poller waits at least
// RateLimitWait between calls: no tight loop; and Run leaves no goroutine behind.
func TestExceedLimitBacksOff(t *testing.T) {
	r := newRig(t, testenv.Kafka(t))
	if err := r.sb.Inject(elemesandbox.Fault{Kind: elemesandbox.FaultExceedLimit}); err != nil {
		t.Fatal(err)
	}
	r.api.HTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	w := r.writer()
	leaks := goleak.IgnoreCurrent()
	stop := start(t, r.poller(w, "a", prometheus.NewRegistry()))
	time.Sleep(2500 * time.Millisecond)
	stop()
	// Every per-app loop and lease renewer ended with Run. Connections of kafka-go transports
	// (this rig's writer, or another test's closing in the background) are not the poller's.
	goleak.VerifyNone(t, leaks, goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*conn).run"))
	calls := r.sb.Stats().CallsByOutcome[elemeapi.CodeExceedLimit]
	// Interval 200 ms and backoff up to 500 ms would make ~5+ calls; RateLimitWait 1 s allows 3.
	if calls < 1 || calls > 3 {
		t.Errorf("%d calls in 2.5 s under EXCEED_LIMIT, want 1..3", calls)
	}
}

// NewMetricsFor registers the metrics on reg and returns them, for the tests' reads.
func NewMetricsFor(reg *prometheus.Registry) *metricsView { return &metricsView{reg: reg} }

type metricsView struct{ reg *prometheus.Registry }

func (v *metricsView) gather(name, app string) prometheus.Collector {
	return gatherer{reg: v.reg, name: name, app: app}
}
func (v *metricsView) leaderFor(app string) prometheus.Collector {
	return v.gather("elemepull_leader", app)
}
func (v *metricsView) pulledFor(app string) prometheus.Collector {
	return v.gather("elemepull_messages_pulled_total", app)
}
func (v *metricsView) confirmedFor(app string) prometheus.Collector {
	return v.gather("elemepull_messages_confirmed_total", app)
}

// gatherer exposes one series of a registry as a collector for testutil.ToFloat64.
type gatherer struct {
	reg       *prometheus.Registry
	name, app string
}

func (g gatherer) Describe(ch chan<- *prometheus.Desc) {
	ch <- prometheus.NewDesc(g.name, "view", nil, nil)
}

func (g gatherer) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != g.name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "app" && l.GetValue() == g.app {
					v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
					ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "view", nil, nil), prometheus.UntypedValue, v)
					return
				}
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "view", nil, nil), prometheus.UntypedValue, 0)
}

type readiness struct {
	mu sync.Mutex
	m  map[string]error
}

func (r *readiness) Set(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]error{}
	}
	r.m[name] = err
}

func (r *readiness) get(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[name]
}

// TestUnreadableLeftHeldAndNotReady: a pulled message that cannot be rebuilt into a push body
// (no type) is never confirmed nor dropped; the readable ones beside it are written and
// confirmed; the app turns not ready, so the stall is seen.
func TestUnreadableLeftHeldAndNotReady(t *testing.T) {
	r := newRig(t, testenv.Kafka(t))
	good := pushes(2, "6")
	bad := json.RawMessage(`{"requestId":"bad1","message":"{\"orderId\":\"1\"}","shopId":1,"userId":1,"timestamp":1}`)
	if _, err := r.sb.Hold(testApp.AppID, good[0], bad, good[1]); err != nil {
		t.Fatal(err)
	}
	ready := &readiness{}
	p := r.poller(r.writer(), "a", prometheus.NewRegistry())
	p.c.Ready = ready
	start(t, p)
	waitFor(t, 20*time.Second, "the app not ready", func() bool { return ready.get(CheckApp(testApp.AppID)) != nil })
	held := r.sb.HeldMessages("")
	if len(held) != 1 || !strings.Contains(string(held[0].Message), "bad1") {
		t.Fatalf("held %+v, want only the unreadable message", held)
	}
	readUntil(t, r.brokers, r.topic, distinct(2)) // the two readable messages
}
