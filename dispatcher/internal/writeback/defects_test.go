package writeback

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/orderpipe/pipeline/dispatcher/internal/dangdang"
	"github.com/orderpipe/pipeline/dispatcher/internal/ddsandbox"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

func (f *fixture) setState(shop, id string, st State) {
	ms := f.sink.store.(*memStore)
	ms.mu.Lock()
	ms.m[shop+"/"+id] = st
	ms.mu.Unlock()
}

func (f *fixture) results() []Result {
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	return append([]Result(nil), f.rec.res...)
}

// Defect 5: the last state sent is re-read before every attempt. Another instance sending
// "failed" between our attempts turns our "delivered" into a skip, not a failed → delivered.
func TestStateRecheckedBeforeEachAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Config{Window: 100 * time.Millisecond, BackoffMin: time.Second, BackoffMax: time.Second})
		f.sb.Inject(ddsandbox.Fault{Kind: ddsandbox.FaultHTTP5xx, Times: 1})
		stop := f.run(time.Minute)
		t0 := time.Now()
		f.submit(t, 1, 1, dangdang.DistriDelivered)
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		if n := len(f.sb.Calls("1")); n != 1 {
			t.Fatalf("%d calls, want the first (failed) one", n)
		}
		f.setState("a", "1", State{Status: dangdang.DistriFailed, OccurredAt: t0.Add(time.Second)})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		f.done.Wait()
		res := f.results()
		if len(res) != 1 || res[0].Outcome != OutcomeSkipped {
			t.Fatalf("results %+v: want order 1 skipped after another instance sent failed", res)
		}
		if o, ok := f.sb.Order("1", "1"); ok && o.Accepted > 0 {
			t.Fatalf("delivered was sent after failed: %+v", o)
		}
		stop()
	})
}

// Defect 5: the saved state never moves backwards (compare-and-set on occurred_at).
func TestRedisSaveNeverMovesBackwards(t *testing.T) {
	addr := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	s := &RedisStore{C: rdb, Prefix: testenv.Name(t, "op") + ":", TTL: time.Hour}
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.Save(ctx, "a", map[string]State{"1": {Status: 2, OccurredAt: t0.Add(time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	// A second instance that decided earlier saves an older state afterwards.
	if err := s.Save(ctx, "a", map[string]State{"1": {Status: 1, OccurredAt: t0}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, "a", []string{"1"})
	if err != nil {
		t.Fatal(err)
	}
	if st := got["1"]; st.Status != 2 || !st.OccurredAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("stored state %+v, want the newer failed state kept", st)
	}
}

// Defect 7: rate-limit answers pause the whole shop with backoff and spend no attempts: a minute
// of rate limiting dead-letters nothing, and no two calls go out back to back while limited.
func TestRateLimitPausesShopWithoutSpendingAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Config{Window: 100 * time.Millisecond, BatchSize: 2, MaxAttempts: 3,
			BackoffMin: 100 * time.Millisecond, BackoffMax: 2 * time.Second, RateLimitBackoff: time.Second})
		f.sb.Inject(ddsandbox.Fault{Kind: ddsandbox.FaultRateLimit})
		stop := f.run(time.Minute)
		f.submit(t, 1, 6, dangdang.DistriDelivered)
		time.Sleep(time.Minute)
		synctest.Wait()
		// Calls started together before the first answer may share an instant; once a
		// rate-limit answer is in, the next call of the shop waits the backoff.
		calls := f.sb.Calls("1")
		for i := 1; i < len(calls); i++ {
			if gap := calls[i].At.Sub(calls[i-1].At); gap > 0 && gap < 500*time.Millisecond {
				t.Fatalf("calls %d and %d went %s apart while the shop was rate limited", i-1, i, gap)
			}
		}
		if len(calls) < 10 {
			t.Fatalf("%d calls in a minute of rate limiting, want the shop to keep trying", len(calls))
		}
		f.sb.ClearFaults()
		time.Sleep(time.Minute)
		synctest.Wait()
		f.done.Wait()
		if got := f.rec.outcomes(); got[OutcomeAccepted] != 6 || got[OutcomeDeadLettered] != 0 {
			t.Fatalf("outcomes %v after a minute of rate limiting, want 6 accepted", got)
		}
		stop()
	})
}

// Defect 8: a probe whose orders were all skipped by the rules made no call; it must not resume
// the paused shop.
func TestProbeWithoutCallKeepsShopPaused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Config{Window: 100 * time.Millisecond, PauseProbe: time.Minute})
		f.sb.Inject(ddsandbox.Fault{Kind: ddsandbox.FaultExpired})
		stop := f.run(time.Minute)
		t0 := time.Now()
		f.submit(t, 1, 1, dangdang.DistriDelivered)
		time.Sleep(time.Second)
		synctest.Wait()
		if testutil.ToFloat64(f.sink.m.Paused.WithLabelValues("a")) != 1 {
			t.Fatal("shop not paused by 176")
		}
		// Another instance sent the order meanwhile: the probe skips it and makes no call.
		f.setState("a", "1", State{Status: dangdang.DistriDelivered, OccurredAt: t0.Add(time.Second)})
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(f.sb.Calls("1")); n != 1 {
			t.Fatalf("%d calls, want only the first (the probe had nothing to send)", n)
		}
		if testutil.ToFloat64(f.sink.m.Paused.WithLabelValues("a")) != 1 {
			t.Fatal("a probe that made no call resumed the shop")
		}
		stop()
	})
}

// Defect 9: a replay after a crash between saving the state and recording the result must record
// Dangdang's real answer, not "skipped / already_sent".
func TestReplayAfterCrashRecordsTheAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Config{Window: 100 * time.Millisecond})
		stop := f.run(time.Minute)
		// The first run: Dangdang accepted order 1 and its state was saved; kill -9 before the
		// result was written. The replay submits the same event again.
		f.submit(t, 1, 1, dangdang.DistriDelivered)
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		f.done.Wait()
		first := f.results()
		f.rec.mu.Lock()
		f.rec.res = nil // the record never reached the results topic
		f.rec.mu.Unlock()
		ms := f.sink.store.(*memStore)
		ms.mu.Lock()
		st := ms.m["a/1"]
		ms.mu.Unlock()
		f.done.Add(1)
		it := Item{Shop: "a", OrderID: "1", DistriStatus: dangdang.DistriDelivered, OccurredAt: st.OccurredAt, EventID: "e1",
			Done: func(Outcome) { f.done.Done() }}
		if err := f.sink.Submit(context.Background(), it); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		f.done.Wait()
		res := f.results()
		if len(first) != 1 || len(res) != 1 || res[0].Outcome != OutcomeAccepted || res[0].OrderOperCode != first[0].OrderOperCode {
			t.Fatalf("replayed result %+v, want accepted with Dangdang's original answer %+v", res, first)
		}
		stop()
	})
}

// Park applies only to a stuck shop: a healthy shop's waiting order (a backlog during catch-up)
// is left to be sent; a paused shop's order is parked with the replayable DLQ reason.
func TestParkOnlyWhileShopIsStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Config{Window: time.Minute, PauseProbe: time.Hour})
		stop := f.run(time.Minute)
		var mu sync.Mutex
		var got []Outcome
		submit := func(id string) {
			f.done.Add(1)
			it := Item{Shop: "a", OrderID: id, DistriStatus: dangdang.DistriDelivered, OccurredAt: time.Now(), EventID: "e" + id,
				Done: func(o Outcome) { mu.Lock(); got = append(got, o); mu.Unlock(); f.done.Done() }}
			if err := f.sink.Submit(context.Background(), it); err != nil {
				t.Fatal(err)
			}
		}
		submit("1")
		synctest.Wait()
		f.sink.Park("a", "1")
		time.Sleep(time.Minute)
		synctest.Wait()
		f.done.Wait()
		if len(got) != 1 || got[0].DLQReason != "" || f.rec.outcomes()[OutcomeAccepted] != 1 {
			t.Fatalf("healthy shop: outcomes %+v %v, want order 1 accepted, not parked", got, f.rec.outcomes())
		}
		f.sb.Inject(ddsandbox.Fault{Kind: ddsandbox.FaultExpired})
		submit("2")
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if testutil.ToFloat64(f.sink.m.Paused.WithLabelValues("a")) != 1 {
			t.Fatal("shop not paused")
		}
		submit("3")
		synctest.Wait()
		f.sink.Park("a", "3")
		synctest.Wait()
		mu.Lock()
		last := got[len(got)-1]
		mu.Unlock()
		if len(got) != 2 || last.DLQReason != DLQParked {
			t.Fatalf("paused shop: outcomes %+v, want order 3 parked with %s", got, DLQParked)
		}
		stop()
	})
}
