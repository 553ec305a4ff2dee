package consumer

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/normalizer/internal/orderstate"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/ops"
)

// downStore fails every claim, as a Redis that answers pings but refuses the script would.
type downStore struct{ Store }

func (downStore) Claim(context.Context, []orderstate.Event) ([]orderstate.Result, error) {
	return nil, errors.New("redis: NOSCRIPT and no way to load it")
}

// hangingStore blocks every claim until its context ends: no error, no progress.
type hangingStore struct {
	Store
	calls atomic.Int64
}

func (h *hangingStore) Claim(ctx context.Context, _ []orderstate.Event) ([]orderstate.Result, error) {
	h.calls.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// startWithReadiness runs a consumer on e's topics with the real ops.Readiness main uses, and a
// dependency ping that keeps reporting Kafka and Redis healthy every 20 ms, as main's does.
func (e *env) startWithReadiness(t *testing.T, store Store, stall time.Duration) (*ops.Readiness, func()) {
	t.Helper()
	ready := ops.NewReadiness(CheckKafka, CheckRedis, CheckLoop)
	reader := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: e.brokers, GroupID: e.group, Topic: e.raw, MaxWait: 100 * time.Millisecond})
	statusW := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: e.brokers, Topic: e.status})
	dlqW := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: e.brokers, Topic: e.dlq})
	cons, err := New(Config{Reader: reader, Status: statusW, DLQ: dlqW, Store: store, Metrics: NewMetrics(prometheus.NewRegistry()),
		Ready: ready, Log: zap.NewNop(), BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		StallTimeout: stall, DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() {
		_ = cons.Run(ctx)
		reader.Close()
		statusW.Close()
		dlqW.Close()
		done <- struct{}{}
	}()
	go func() { // main's watchDependencies, faster
		for ctx.Err() == nil {
			ready.Set(CheckKafka, nil)
			ready.Set(CheckRedis, nil)
			time.Sleep(20 * time.Millisecond)
		}
		done <- struct{}{}
	}()
	return ready, func() {
		cancel()
		<-done
		<-done
	}
}

// Once the loop fails, readiness stays false however often the dependency ping succeeds: the
// ping used to overwrite the loop's error, so /readyz flapped and a "for: 5m" alert never fired.
func TestPingDoesNotHideALoopThatFails(t *testing.T) {
	e := newEnv(t, 1)
	ready, stop := e.startWithReadiness(t, downStore{Store: e.store}, time.Minute)
	defer stop()
	e.produce(dianwoda(t, "RD1", "1", "dispatched", "rider_dispatch", 1000))
	deadline := time.Now().Add(60 * time.Second)
	for ready.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("never not ready while every claim fails")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := 0; i < 200; i++ { // 2 s of samples, a hundred pings
		if ready.Err() == nil {
			t.Fatalf("ready again after %d ms while every claim still fails: the ping hid the loop's failure", i*10)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A call that hangs without failing is a stall: with work in flight and no batch finished for
// StallTimeout, the loop is not ready.
func TestHungLoopIsNotReady(t *testing.T) {
	e := newEnv(t, 1)
	hs := &hangingStore{Store: e.store}
	ready, stop := e.startWithReadiness(t, hs, 300*time.Millisecond)
	defer stop()
	e.produce(dianwoda(t, "RD2", "1", "dispatched", "rider_dispatch", 1000))
	deadline := time.Now().Add(60 * time.Second)
	for hs.calls.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no claim")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := ready.Err(); err != nil {
		t.Fatalf("not ready at once (%v): the stall timeout has not passed yet", err)
	}
	for ready.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("still ready while the loop hangs with a batch in flight")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("not ready: %v", ready.Err())
}

// An idle loop is not a stalled one.
func TestIdleLoopStaysReady(t *testing.T) {
	now := time.Unix(0, 0)
	p := newProgress(func() time.Time { return now }, time.Second)
	now = now.Add(time.Hour)
	if err := p.err(); err != nil {
		t.Fatalf("idle for an hour: %v", err)
	}
	p.fetched(3)
	now = now.Add(500 * time.Millisecond)
	if err := p.err(); err != nil {
		t.Fatalf("half a stall timeout into work: %v", err)
	}
	now = now.Add(time.Second)
	if p.err() == nil {
		t.Fatal("1.5 s of work without progress: want not ready")
	}
	p.finished(3)
	if err := p.err(); err != nil {
		t.Fatalf("after the batch finished: %v", err)
	}
}
