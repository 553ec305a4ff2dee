package consumer

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/schemas"
)

// waitCommittedWithin is waitCommitted with a bound of its own: a stalled loop fails the test
// in d, not in two minutes.
func (r *running) waitCommittedWithin(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for testutil.ToFloat64(r.metrics.Committed) < float64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("committed %v of %d records in %s: the loop is stuck", testutil.ToFloat64(r.metrics.Committed), n, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hugeDianwoda is a Dianwoda status callback of about 160 KiB, as the ingress stores it (query
// with its signature fields, body byte for byte), whose action_detail is all '<', '>' and '&':
// each becomes six bytes (\u003c...) in the unified event, which so outgrows a 900 KiB batch.
func hugeDianwoda(t *testing.T, orderID string) kafka.Message {
	detail := strings.Repeat("<>&", 160<<10/3)
	body := fmt.Sprintf(`{"content":{"order_original_id":%q,"order_status":"abnormal","action_code":"customer_sign_abnormal","action_sub_code":"other","action_detail":%q,"time_status_update":%d},"deliver_times":1,"msg_id":"huge","pub_time":%d}`,
		orderID, detail, t0+5000, t0+5000)
	m := record(t, schemas.PlatformDianwoda, orderID, body)
	return m
}

// Defect 1: an event larger than the status topic takes is poison. It goes to the DLQ with
// reason too_large and the records around it flow, through the real broker.
func TestOversizedEventIsDeadLetteredAndTheRestFlows(t *testing.T) {
	e := newEnv(t, 1)
	huge := hugeDianwoda(t, "BIG1")
	if n := len(huge.Value); n < 150<<10 || n > 300<<10 {
		t.Fatalf("raw record of %d bytes, want about 160 KiB of body", n)
	}
	r := e.start(options{})
	defer r.stop(t)
	e.produce(dianwoda(t, "S1", "1", "dispatched", "rider_dispatch", 1000), huge, dianwoda(t, "S2", "1", "dispatched", "rider_dispatch", 1000))
	r.waitCommittedWithin(t, 3, 45*time.Second)
	if got := e.readAll(e.status, 2, 2*time.Second); len(got) != 2 || got[0].ev.OrderID != "S1" || got[1].ev.OrderID != "S2" {
		// Each event's order and id: a copy with the same event_id is a redelivery (a produce
		// retried after a timeout), a second event_id a real duplicate.
		seen := make([]string, len(got))
		for i, o := range got {
			seen[i] = o.ev.OrderID + "/" + o.ev.EventID
		}
		t.Fatalf("status events %d %v, want S1 and S2", len(got), seen)
	}
	dead := e.readAll(e.dlq, 1, 2*time.Second)
	if len(dead) != 1 || dead[0].headers[schemas.HeaderDLQReason] != schemas.DLQReasonTooLarge || string(dead[0].value) != string(huge.Value) {
		t.Fatalf("dead letters %d (reason %q), want the raw record whole with reason too_large", len(dead), firstReason(dead))
	}
}

// Defect 1, the dead-letter side: a raw record that the raw topic took, within a few KiB of its
// limit, cannot be copied to the DLQ with its headers. Its dead letter carries a bounded excerpt
// (reason too_large) and the loop goes on.
func TestDeadLetterTooLargeForTheDLQCarriesAnExcerpt(t *testing.T) {
	e := newEnv(t, 1)
	big := int64(schemas.RawMaxMessageBytes)
	createBigTopics(t, e, big)
	producer := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: e.brokers, Topic: e.raw, BatchBytes: big, WriteTimeout: time.Minute})
	defer producer.Close()
	// Undecodable (not an envelope), just under the raw topic's limit.
	poison := kafka.Message{Key: []byte("dianwoda:P1"), Value: []byte(strings.Repeat("x", int(big)-2<<10))}
	r := e.start(options{dlqBatchBytes: big - 16<<10})
	defer r.stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := producer.WriteMessages(ctx, poison, dianwoda(t, "S3", "1", "dispatched", "rider_dispatch", 1000)); err != nil {
		t.Fatal(err)
	}
	r.waitCommittedWithin(t, 2, 45*time.Second)
	dead := e.readAll(e.dlq, 1, 2*time.Second)
	if len(dead) != 1 || dead[0].headers[schemas.HeaderDLQReason] != schemas.DLQReasonTooLarge {
		t.Fatalf("dead letters %d (reason %q), want one with reason too_large", len(dead), firstReason(dead))
	}
	if n := len(dead[0].value); n == 0 || n > 64<<10 || string(dead[0].value) != string(poison.Value[:n]) {
		t.Errorf("dead letter value of %d bytes, want a bounded excerpt of the record", n)
	}
	if dead[0].headers[schemas.HeaderDLQOffset] == "" || !strings.Contains(dead[0].headers[schemas.HeaderDLQError], "decode") {
		t.Errorf("dead letter headers %v: want the origin offset and the first reason in dlq_error", dead[0].headers)
	}
	if got := e.readAll(e.status, 1, time.Second); len(got) != 1 || got[0].ev.OrderID != "S3" {
		t.Fatalf("status events %d, want S3", len(got))
	}
}

func firstReason(o []out) string {
	if len(o) == 0 {
		return ""
	}
	return o[0].headers[schemas.HeaderDLQReason]
}

// createBigTopics recreates nothing: it sets max.message.bytes on the test's raw and DLQ topics,
// as ensureTopics does in main.
func createBigTopics(t *testing.T, e *env, bytes int64) {
	t.Helper()
	e.raw, e.dlq = e.raw+".big", e.dlq+".big"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := map[string]string{"max.message.bytes": fmt.Sprint(bytes)}
	if err := kafkaio.EnsureTopics(ctx, e.brokers, kafkaio.TopicSpec{Name: e.raw, Partitions: e.partitions, Configs: cfg},
		kafkaio.TopicSpec{Name: e.dlq, Partitions: e.partitions, Configs: cfg}); err != nil {
		t.Fatal(err)
	}
}

// recordingWriter records what reaches "the broker" and fails chosen messages of its first call
// with kafka.WriteErrors, as a partial produce failure does.
type recordingWriter struct {
	mu      sync.Mutex
	calls   int
	failing map[string]bool // values failing on the first call
	written []string        // values, in the order they landed
}

func (w *recordingWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	var errs kafka.WriteErrors
	failed := false
	for _, m := range msgs {
		if w.calls == 1 && w.failing[string(m.Value)] {
			errs = append(errs, kafka.NotLeaderForPartition)
			failed = true
			continue
		}
		errs = append(errs, nil)
		w.written = append(w.written, string(m.Value))
	}
	if failed {
		return errs
	}
	return nil
}

// Defect 2: after a partial failure the retry re-sends, in order, everything of a key (so of a
// partition) from its first failure on: an older event never lands after a newer one of its
// order without the newer one landing again after it.
func TestPartialRetryKeepsPerOrderOrder(t *testing.T) {
	msg := func(key, v string) kafka.Message { return kafka.Message{Key: []byte(key), Value: []byte(v)} }
	batch := []kafka.Message{msg("a", "a1"), msg("b", "b1"), msg("a", "a2"), msg("a", "a3"), msg("b", "b2"), msg("b", "b3")}
	w := &recordingWriter{failing: map[string]bool{"a2": true, "b3": true}}
	cs := newTestConsumer(t)
	if err := cs.write(context.Background(), w, "produce status events", batch); err != nil {
		t.Fatal(err)
	}
	checkLandedInOrder(t, batch, w.written)
}

// checkLandedInOrder: every record of batch was written, and per key the last copy of each
// record landed before the last copy of every later record of that key.
func checkLandedInOrder(t *testing.T, batch []kafka.Message, written []string) {
	t.Helper()
	last := map[string]int{}
	for i, v := range written {
		last[v] = i
	}
	for i, m := range batch {
		for _, later := range batch[i+1:] {
			if string(later.Key) == string(m.Key) && last[string(later.Value)] < last[string(m.Value)] {
				t.Errorf("%s landed last after %s: written %v", m.Value, later.Value, written)
			}
		}
		if _, ok := last[string(m.Value)]; !ok {
			t.Errorf("%s never written: %v", m.Value, written)
		}
	}
}

// wholeCallWriter lands the records of its first call except the failing ones and reports one
// error for the call, as kafkaio.Producer does when a partition fails for good.
type wholeCallWriter struct{ recordingWriter }

func (w *wholeCallWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if err := w.recordingWriter.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("kafka produce to t/0: %w", kafka.NotEnoughReplicas)
	}
	return nil
}

// A writer that reports one error for the whole call gets the whole batch again, in order: every
// record lands, and none of an order lands last before a newer one of its order.
func TestWholeCallRetryKeepsPerOrderOrder(t *testing.T) {
	msg := func(key, v string) kafka.Message { return kafka.Message{Key: []byte(key), Value: []byte(v)} }
	batch := []kafka.Message{msg("a", "a1"), msg("b", "b1"), msg("a", "a2"), msg("a", "a3"), msg("b", "b2"), msg("b", "b3")}
	w := &wholeCallWriter{recordingWriter{failing: map[string]bool{"a2": true, "b3": true}}}
	cs := newTestConsumer(t)
	if err := cs.write(context.Background(), w, "produce status events", batch); err != nil {
		t.Fatal(err)
	}
	checkLandedInOrder(t, batch, w.written)
}

// gateWriter holds the first write until released, then writes for real whatever the caller's
// context says: the broker took the batch while the process was told to stop.
type gateWriter struct {
	Writer
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gateWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
		return g.Writer.WriteMessages(context.WithoutCancel(ctx), msgs...)
	}
	return g.Writer.WriteMessages(ctx, msgs...)
}

// Defect 7: a stop (SIGTERM) while a batch is being written finishes it (write, confirm,
// commit), so the restarted process does not emit it again.
func TestStopDrainsTheBatchesInFlight(t *testing.T) {
	e := newEnv(t, 1)
	const n = 5
	var msgs []kafka.Message
	for i := range n {
		msgs = append(msgs, dianwoda(t, fmt.Sprintf("DR%d", i), "1", "dispatched", "rider_dispatch", 1000))
	}
	e.produce(msgs...)
	g := &gateWriter{entered: make(chan struct{}), release: make(chan struct{})}
	r := e.start(options{status: func(w Writer, _ context.CancelFunc) Writer { g.Writer = w; return g }})
	select {
	case <-g.entered:
	case <-time.After(60 * time.Second):
		t.Fatal("no write started")
	}
	r.cancel() // SIGTERM
	close(g.release)
	r.stop(t)
	// Restart and let it finish whatever the first run left.
	r2 := e.start(options{})
	defer r2.stop(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		lag, err := kafkaio.GroupLag(ctx, e.brokers, e.group, e.raw)
		cancel()
		if err == nil && lag[0] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group lag %v, %v", lag, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := e.readAll(e.status, n, 3*time.Second)
	if len(got) != n {
		t.Fatalf("%d status records for %d transitions: the batch written during the stop was emitted again after the restart", len(got), n)
	}
}

// newTestConsumer is a Consumer for tests of its parts: no I/O is wired.
func newTestConsumer(t *testing.T) *Consumer {
	t.Helper()
	cs, err := New(Config{Reader: struct{ Reader }{}, Status: struct{ Writer }{}, DLQ: struct{ Writer }{}, Store: struct{ Store }{},
		Metrics: NewMetrics(prometheus.NewRegistry()), Log: zap.NewNop(), BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// blockingWriter never acknowledges: a broker that hangs.
type blockingWriter struct {
	Writer
	entered chan struct{}
	once    sync.Once
}

func (b *blockingWriter) WriteMessages(ctx context.Context, _ ...kafka.Message) error {
	b.once.Do(func() { close(b.entered) })
	<-ctx.Done()
	return ctx.Err()
}

// The drain is bounded: a write that never completes does not hold the stop beyond DrainTimeout,
// and what it held is left uncommitted for a replay.
func TestDrainIsBounded(t *testing.T) {
	e := newEnv(t, 1)
	e.produce(dianwoda(t, "DB1", "1", "dispatched", "rider_dispatch", 1000))
	bw := &blockingWriter{entered: make(chan struct{})}
	r := e.start(options{drain: 500 * time.Millisecond, status: func(w Writer, _ context.CancelFunc) Writer { bw.Writer = w; return bw }})
	select {
	case <-bw.entered:
	case <-time.After(60 * time.Second):
		t.Fatal("no write started")
	}
	start := time.Now()
	r.stop(t)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stop took %s with a 500 ms drain timeout", d)
	}
	if n := testutil.ToFloat64(r.metrics.Committed); n != 0 {
		t.Errorf("committed %v records whose event was never acknowledged", n)
	}
}
