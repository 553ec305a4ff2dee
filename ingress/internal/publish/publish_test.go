package publish

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/ops"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// gateWriter blocks every write until its context ends or release is closed: it stands for a
// broker that is slow to acknowledge, which the real broker cannot be made to be on demand.
type gateWriter struct {
	release chan struct{}
	entered chan struct{}
}

func (g *gateWriter) WriteMessages(ctx context.Context, _ ...kafka.Message) error {
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gateWriter) Close() error { return nil }

// TestBoundAndDeadline: beyond MaxInflight a write is refused at once (ErrBusy, no queue), and
// Admit says so beforehand; a write Kafka does not acknowledge within WriteTimeout fails with
// ErrUnavailable and readiness drops.
func TestBoundAndDeadline(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // other tests may leave testenv's ping transport
	g := &gateWriter{release: make(chan struct{}), entered: make(chan struct{}, 8)}
	ready := ops.NewReadiness(CheckName)
	ready.Set(CheckName, nil)
	p := New(g, Config{MaxInflight: 2, WriteTimeout: 300 * time.Millisecond}, ready, prometheus.NewRegistry())

	errs := make(chan error, 2)
	for i := range 2 {
		if err := p.Admit(); err != nil {
			t.Fatalf("Admit with %d of 2 writes waiting: %v", i, err)
		}
		go func() { errs <- p.Publish(context.Background(), kafka.Message{}) }()
		<-g.entered
	}
	if err := p.Admit(); !errors.Is(err, ErrBusy) {
		t.Fatalf("Admit with 2 of 2 writes waiting: %v, want ErrBusy", err)
	}
	if err := p.Publish(context.Background(), kafka.Message{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("third write: %v, want ErrBusy", err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) && !containsDeadline(err) {
			t.Fatalf("unacknowledged write: %v, want ErrUnavailable after the deadline", err)
		}
	}
	if ready.Err() == nil {
		t.Error("ready after failed writes")
	}
	close(g.release)
	if err := p.Admit(); err != nil {
		t.Fatalf("Admit after the writes ended: %v", err)
	}
	go func() { <-g.entered }()
	if err := p.Publish(context.Background(), kafka.Message{}); err != nil {
		t.Fatalf("write after the slot freed: %v", err)
	}
}

func containsDeadline(err error) bool {
	return err != nil && strings.Contains(err.Error(), "deadline")
}

// ctxWriter records the context of every write and acknowledges it at once.
type ctxWriter struct {
	mu   sync.Mutex
	ctxs []context.Context
}

func (w *ctxWriter) WriteMessages(ctx context.Context, _ ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ctxs = append(w.ctxs, ctx)
	return nil
}

func (w *ctxWriter) Close() error { return nil }

// TestWritesShareTheirDeadline: writes whose caller's context cannot end (the ingress passes
// context.WithoutCancel) and that start within one step share one context, whose deadline is
// at least WriteTimeout and at most WriteTimeout + writeDeadlineStep after each write started;
// a later step gets a new one. A caller's context that can end still bounds its own write.
func TestWritesShareTheirDeadline(t *testing.T) {
	w := &ctxWriter{}
	const timeout = 2 * time.Second
	p := New(w, Config{MaxInflight: 4, WriteTimeout: timeout}, ops.NewReadiness(CheckName), prometheus.NewRegistry())
	caller := context.WithoutCancel(context.WithValue(context.Background(), ctxKey{}, "request 1"))
	var starts, ends []time.Time
	publish := func() {
		starts = append(starts, time.Now())
		if err := p.Publish(caller, kafka.Message{}); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, time.Now())
	}
	for range 3 {
		publish()
	}
	time.Sleep(writeDeadlineStep + time.Millisecond)
	publish()
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	own := time.Now()
	if err := p.Publish(parent, kafka.Message{}); err != nil {
		t.Fatal(err)
	}

	ctxs := w.ctxs
	if len(ctxs) != 5 {
		t.Fatalf("%d writes, want 5", len(ctxs))
	}
	// The first three started within one step unless the machine stalled between them.
	if time.Since(starts[0]) < writeDeadlineStep && (ctxs[0] != ctxs[1] || ctxs[1] != ctxs[2]) {
		t.Error("writes starting within one step did not share their context")
	}
	if ctxs[3] == ctxs[0] {
		t.Error("a write a step later got the earlier step's context")
	}
	for i, ctx := range ctxs[:4] {
		d, ok := ctx.Deadline()
		if !ok {
			t.Fatalf("write %d has no deadline", i)
		}
		if d.Before(starts[i].Add(timeout)) || d.After(ends[i].Add(timeout+writeDeadlineStep)) {
			t.Errorf("write %d may wait %v from its start, want between %v and %v", i, d.Sub(starts[i]), timeout, timeout+writeDeadlineStep)
		}
		if ctx.Value(ctxKey{}) != nil {
			t.Errorf("write %d carries a request's values in the shared context", i)
		}
	}
	if ctxs[4] == ctxs[3] {
		t.Fatal("a caller's cancellable context was replaced by the shared one")
	}
	cancel()
	if ctxs[4].Err() == nil {
		t.Error("the caller's cancellation does not reach its write")
	}
	if d, ok := ctxs[4].Deadline(); !ok || d.Sub(own) > timeout+time.Second || d.Sub(own) < timeout {
		t.Errorf("the caller's write has deadline %v after its start, want %v", d.Sub(own), timeout)
	}
}

type ctxKey struct{}

// TestFastFailWhileDown: while the health loop reports Kafka down, Publish refuses without
// writing (no queue grows in an outage), and Admit says so beforehand; a healthy report opens
// both again.
func TestFastFailWhileDown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // other tests may leave testenv's ping transport
	g := &gateWriter{release: make(chan struct{}), entered: make(chan struct{}, 8)}
	close(g.release)
	ready := ops.NewReadiness(CheckName)
	p := New(g, Config{MaxInflight: 2, WriteTimeout: time.Second}, ready, prometheus.NewRegistry())
	p.SetHealth(errors.New("no broker"))
	if err := p.Admit(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no broker") {
		t.Fatalf("Admit while down: %v", err)
	}
	if err := p.Publish(context.Background(), kafka.Message{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write while down: %v", err)
	}
	if len(g.entered) != 0 {
		t.Fatal("the writer was called while Kafka was down")
	}
	p.SetHealth(nil)
	if err := p.Admit(); err != nil {
		t.Fatalf("Admit after recovery: %v", err)
	}
	if err := p.Publish(context.Background(), kafka.Message{}); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	if ready.Err() != nil {
		t.Errorf("not ready after recovery: %v", ready.Err())
	}
}

// TestWatchAgainstBroker: the health loop creates the topic, reports ready, and records write
// latency of a real acknowledged write.
func TestWatchAgainstBroker(t *testing.T) {
	brokers := testenv.Kafka(t)
	// testenv's ping leaves a kafka-go transport behind (plumbing/kafkaio.Ping); ignore what
	// exists before the code under test runs.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	topic := testenv.Name(t, "raw")
	w := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: brokers, Topic: topic})
	ready := ops.NewReadiness(CheckName)
	reg := prometheus.NewRegistry()
	p := New(w, Config{MaxInflight: 4, WriteTimeout: 10 * time.Second}, ready, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, p, HealthConfig{Conn: kafkaio.Plaintext(brokers...), Topic: topic, Interval: 100 * time.Millisecond, EnsureTopic: true, Partitions: 3}, zapNop())
	}()
	deadline := time.Now().Add(20 * time.Second)
	for ready.Err() != nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := ready.Err(); err != nil {
		t.Fatalf("never ready: %v", err)
	}
	if err := p.Publish(context.Background(), kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "ingress_kafka_write_seconds"); n != 1 {
		t.Errorf("%d write latency series, want 1", n)
	}
	cancel()
	<-done
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}
