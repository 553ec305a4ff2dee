package writeback

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/dispatcher/internal/dangdang"
	"github.com/orderpipe/pipeline/dispatcher/internal/ddsandbox"
	"github.com/orderpipe/pipeline/dispatcher/internal/routing"
	"github.com/orderpipe/pipeline/dispatcher/internal/shutdown"
)

// handlerTransport serves requests in memory, so the sink can run inside a synctest bubble with
// simulated time.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

type memStore struct {
	mu sync.Mutex
	m  map[string]State
}

func (s *memStore) Load(_ context.Context, shop string, ids []string) (map[string]State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]State{}
	for _, id := range ids {
		if st, ok := s.m[shop+"/"+id]; ok {
			out[id] = st
		}
	}
	return out, nil
}

func (s *memStore) Save(_ context.Context, shop string, states map[string]State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range states {
		if cur, ok := s.m[shop+"/"+id]; ok && cur.OccurredAt.After(st.OccurredAt) {
			continue // compare-and-set on occurred_at, as RedisStore does
		}
		s.m[shop+"/"+id] = st
	}
	return nil
}

type memRecorder struct {
	mu  sync.Mutex
	res []Result
}

// report records a report and completes its items at once (the results topic is durable).
func (r *memRecorder) report(rep Report) {
	r.mu.Lock()
	r.res = append(r.res, rep.Result)
	r.mu.Unlock()
	rep.Complete(nil)
}

func (r *memRecorder) outcomes() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, x := range r.res {
		out[x.Outcome]++
	}
	return out
}

type fixture struct {
	sb   *ddsandbox.Sandbox
	sink *Sink
	rec  *memRecorder
	done sync.WaitGroup
}

func newFixture(t *testing.T, cfg Config) *fixture {
	sb := ddsandbox.New(ddsandbox.Shop{AppKey: "1", Secret: "s"})
	if cfg.Shops == nil {
		cfg.Shops = map[string]*routing.Shop{"a": {Name: "a", AppKey: "1", AppSecret: "s", Session: "x", RatePerSecond: 100, Burst: 100, Concurrency: 2}}
	}
	f := &fixture{sb: sb, rec: &memRecorder{}}
	client := &dangdang.Client{URL: "http://sandbox/openapi/rest", HTTP: &http.Client{Transport: handlerTransport{sb.Handler()}}}
	f.sink = New(cfg, client, &memStore{m: map[string]State{}}, f.rec.report, NewMetrics(prometheus.NewRegistry()), zap.NewNop())
	return f
}

// run runs the sink until the returned stop is called (a soft stop, then a hard one after grace).
func (f *fixture) run(grace time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	st, abandon := shutdown.New(ctx, grace)
	stopped := make(chan struct{})
	go func() { f.sink.Run(st); close(stopped) }()
	return func() { cancel(); <-stopped; abandon() }
}

func (f *fixture) submit(t *testing.T, from, n int, status int) {
	for i := from; i < from+n; i++ {
		f.done.Add(1)
		it := Item{Shop: "a", OrderID: strconv.Itoa(i), DistriStatus: status, OccurredAt: time.Now(), EventID: "e" + strconv.Itoa(i),
			Done: func(Outcome) { f.done.Done() }}
		if err := f.sink.Submit(context.Background(), it); err != nil {
			t.Fatal(err)
		}
	}
}

// Full batches go at once; the rest waits exactly one window from its oldest order.
func TestFlushBySizeThenWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Config{Window: time.Second})
		stop := f.run(time.Minute)
		start := time.Now()
		f.submit(t, 1, 250, dangdang.DistriDelivered)
		synctest.Wait()
		if n := len(f.sb.Calls("1")); n != 2 {
			t.Fatalf("%d calls right after 250 orders, want 2 full ones", n)
		}
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if n := len(f.sb.Calls("1")); n != 2 {
			t.Fatalf("%d calls before the window ended, want 2", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		calls := f.sb.Calls("1")
		if len(calls) != 3 || len(calls[2].Orders) != 50 || calls[2].At.Sub(start) != time.Second {
			t.Fatalf("calls = %d, last has %d orders at +%s; want 3rd call of 50 at +1s", len(calls), len(calls[len(calls)-1].Orders), calls[len(calls)-1].At.Sub(start))
		}
		f.done.Wait()
		if got := f.rec.outcomes(); got[OutcomeAccepted] != 250 {
			t.Fatalf("outcomes = %v", got)
		}
		stop()
	})
}

// 176 pauses the shop: nothing is sent until the probe, nothing is dropped, and the probe's
// success resumes it.
func TestSubscriptionExpiredPausesUntilProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Config{Window: 100 * time.Millisecond, PauseProbe: time.Minute})
		f.sb.Inject(ddsandbox.Fault{Kind: ddsandbox.FaultExpired})
		stop := f.run(time.Minute)
		f.submit(t, 1, 10, dangdang.DistriDelivered)
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(f.sb.Calls("1")); n != 1 || testutil.ToFloat64(f.sink.m.Paused.WithLabelValues("a")) != 1 {
			t.Fatalf("%d calls while paused (want only the first), paused gauge %v", n, testutil.ToFloat64(f.sink.m.Paused.WithLabelValues("a")))
		}
		f.submit(t, 11, 10, dangdang.DistriDelivered)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if n := len(f.sb.Calls("1")); n != 1 || len(f.rec.outcomes()) != 0 {
			t.Fatalf("paused shop: %d calls, outcomes %v", n, f.rec.outcomes())
		}
		f.sb.ClearFaults()
		time.Sleep(31 * time.Second)
		synctest.Wait()
		f.done.Wait()
		if got := f.rec.outcomes(); got[OutcomeAccepted] != 20 || testutil.ToFloat64(f.sink.m.Paused.WithLabelValues("a")) != 0 {
			t.Fatalf("after resume: %v", got)
		}
		stop()
	})
}

// Transient failures retry only the orders that need them; exhausted ones are dead-lettered.
func TestRetriesOnlyWhatNeedsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Config{Window: 100 * time.Millisecond, MaxAttempts: 3, BackoffMin: 100 * time.Millisecond})
		f.sb.Inject(ddsandbox.Fault{Kind: ddsandbox.FaultOrderFail, OrderIDs: []string{"2"}, Times: 1})     // retryable 1208, once
		f.sb.Inject(ddsandbox.Fault{Kind: ddsandbox.FaultOrderFail, OrderIDs: []string{"3"}, Code: "1206"}) // permanent
		f.sb.Inject(ddsandbox.Fault{Kind: ddsandbox.FaultOrderFail, OrderIDs: []string{"4"}, Code: "1208"}) // retryable, forever
		stop := f.run(time.Minute)
		f.submit(t, 1, 5, dangdang.DistriDelivered)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		f.done.Wait()
		got := f.rec.outcomes()
		if got[OutcomeAccepted] != 3 || got[OutcomeRejected] != 1 || got[OutcomeDeadLettered] != 1 {
			t.Fatalf("outcomes = %v", got)
		}
		calls := f.sb.Calls("1")
		if len(calls) != 3 || len(calls[0].Orders) != 5 || len(calls[1].Orders) != 2 || len(calls[2].Orders) != 1 {
			t.Fatalf("calls = %+v; want 5, then orders 2 and 4, then 4", calls)
		}
		stop()
	})
}

// The per-shop limiter spaces calls: 500 orders at 2 calls/s (burst 1) take 5 calls over 2 s.
func TestRateLimiterSpacesCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Config{Window: time.Second, Shops: map[string]*routing.Shop{
			"a": {Name: "a", AppKey: "1", AppSecret: "s", Session: "x", RatePerSecond: 2, Burst: 1, Concurrency: 5}}})
		stop := f.run(time.Minute)
		start := time.Now()
		f.submit(t, 1, 500, dangdang.DistriDelivered)
		f.done.Wait()
		calls := f.sb.Calls("1")
		if len(calls) != 5 {
			t.Fatalf("%d calls, want 5", len(calls))
		}
		for i, c := range calls {
			if want := time.Duration(i) * 500 * time.Millisecond; c.At.Sub(start) != want {
				t.Errorf("call %d at +%s, want +%s", i, c.At.Sub(start), want)
			}
		}
		stop()
	})
}
