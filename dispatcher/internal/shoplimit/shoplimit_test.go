package shoplimit

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/orderpipe/pipeline/plumbing/testenv"
)

func newLimiter(t *testing.T, addr, prefix string, shops map[string]Limit, log *zap.Logger) (*Limiter, *prometheus.Registry) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	reg := prometheus.NewRegistry()
	if log == nil {
		log = zap.NewNop()
	}
	l, err := New(Config{Redis: rdb, KeyPrefix: prefix, Shops: shops, Log: log, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return l, reg
}

// TestThreeReplicasShareTheLimit: three limiters, each with its own Redis connection as three
// dispatcher replicas would have, call one shop flat out from several goroutines each. Together
// they stay within the shop's rate (20/s, burst 2): over the run, and in every 1 s window.
func TestThreeReplicasShareTheLimit(t *testing.T) {
	addr := testenv.Redis(t)
	prefix := testenv.Name(t, "sl") + ":"
	shops := map[string]Limit{"acme": {PerSecond: 20, Burst: 2}, "other": {PerSecond: 5, Burst: 1}}
	const run = 3 * time.Second

	var mu sync.Mutex
	var calls []time.Duration
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var wg sync.WaitGroup
	for range 3 {
		l, _ := newLimiter(t, addr, prefix, shops, nil)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if err := l.Wait(ctx, "acme"); err != nil {
						if !errors.Is(err, context.DeadlineExceeded) {
							t.Errorf("Wait: %v", err)
						}
						return
					}
					mu.Lock()
					calls = append(calls, time.Since(start))
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	sort.Slice(calls, func(i, j int) bool { return calls[i] < calls[j] })
	max := 2 + 20*int(run/time.Second)
	t.Logf("3 replicas x 4 callers, %s at 20/s burst 2: %d calls (at most %d allowed; three local limiters would allow %d)", run, len(calls), max, 3*max)
	if len(calls) > max+1 {
		t.Errorf("%d calls in %s: the replicas together exceeded the shop's 20/s (burst 2) = %d", len(calls), run, max)
	}
	if len(calls) < max*8/10 {
		t.Errorf("only %d calls in %s: the shared limit starves the shop (want about %d)", len(calls), run, max)
	}
	// No 1 s window holds more than rate + burst calls (+1 for the clocks of the window edges).
	for i := range calls {
		j := sort.Search(len(calls), func(k int) bool { return calls[k] >= calls[i]+time.Second })
		if n := j - i; n > 20+2+1 {
			t.Errorf("%d calls within 1 s from %s: over 20/s + burst 2", n, calls[i])
			break
		}
	}
}

// TestRedisDownFallsBackToLocal: with Redis stopped, Wait keeps working on the local limiter at
// the shop's rate, says so once in the log and counts every fallback; when Redis is back, the
// limit is shared again.
func TestRedisDownFallsBackToLocal(t *testing.T) {
	srv := testenv.OwnRedis(t)
	core, logs := observer.New(zap.InfoLevel)
	l, reg := newLimiter(t, srv.Addr, "fb:", map[string]Limit{"acme": {PerSecond: 20, Burst: 1}}, zap.New(core))
	ctx := context.Background()
	for range 3 {
		if err := l.Wait(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
	}
	if v := testutil.ToFloat64(l.shared); v != 1 {
		t.Fatalf("shared = %v with Redis up", v)
	}
	if srv.Command("EXISTS", "rate:fb:shoplimit:acme") != "1" {
		t.Fatal("the limit is not kept in Redis")
	}

	srv.Stop()
	began := time.Now()
	for i := range 21 {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := l.Wait(wctx, "acme")
		cancel()
		if err != nil {
			t.Fatalf("call %d with Redis down: %v", i, err)
		}
	}
	took := time.Since(began)
	// 21 calls at 20/s with burst 1 (spent before the stop) take about 1 s locally.
	if took < 900*time.Millisecond || took > 4*time.Second {
		t.Errorf("21 calls with Redis down took %s, want ~1 s (the local limiter at 20/s)", took)
	}
	if v := testutil.ToFloat64(l.fallbacks.WithLabelValues("acme")); v != 21 {
		t.Errorf("fallbacks counted %v, want 21", v)
	}
	if v := testutil.ToFloat64(l.shared); v != 0 {
		t.Errorf("shared = %v with Redis down", v)
	}
	if n := logs.FilterMessage("shop limit falls back to local limiter").Len(); n != 1 {
		t.Errorf("%d fallback log lines, want 1 per outage", n)
	}
	if got, err := reg.Gather(); err != nil || len(got) != 2 {
		t.Errorf("registered metrics: %d, %v", len(got), err)
	}

	srv.Start()
	time.Sleep(1100 * time.Millisecond) // RetryRedisAfter
	if err := l.Wait(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(l.shared); v != 1 {
		t.Errorf("shared = %v after Redis came back", v)
	}
	if logs.FilterMessage("shop limit shared through redis again").Len() != 1 {
		t.Error("no log line when the limit is shared again")
	}
}

// TestWaitErrors: an unknown shop and a cancelled wait are errors; a bad limit is refused at New.
func TestWaitErrors(t *testing.T) {
	addr := testenv.Redis(t)
	l, _ := newLimiter(t, addr, testenv.Name(t, "sl")+":", map[string]Limit{"slow": {PerSecond: 0.5, Burst: 1}}, nil)
	if err := l.Wait(context.Background(), "nope"); !errors.Is(err, ErrUnknownShop) {
		t.Errorf("unknown shop: %v", err)
	}
	if err := l.Wait(context.Background(), "slow"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	if err := l.Wait(ctx, "slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second call at 0.5/s within 200 ms: %v, want the deadline", err)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("a cancelled wait returned after %s", d)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for _, bad := range []Limit{{PerSecond: 0, Burst: 1}, {PerSecond: 1, Burst: 0}, {PerSecond: -1, Burst: 1}} {
		if _, err := New(Config{Redis: rdb, Shops: map[string]Limit{"x": bad}}); err == nil {
			t.Errorf("limit %+v accepted", bad)
		}
	}
}

func TestGCRALimit(t *testing.T) {
	for _, tc := range []struct {
		in   Limit
		want time.Duration // emission interval
	}{{Limit{10, 10}, 100 * time.Millisecond}, {Limit{0.5, 1}, 2 * time.Second}, {Limit{2.5, 3}, 400 * time.Millisecond}} {
		g := gcraLimit(tc.in)
		if got := g.Period / time.Duration(g.Rate); got != tc.want || g.Burst != tc.in.Burst {
			t.Errorf("gcraLimit(%+v) = %+v: interval %s, want %s", tc.in, g, got, tc.want)
		}
	}
}
