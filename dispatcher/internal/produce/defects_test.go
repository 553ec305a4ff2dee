package produce

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// gateWriter blocks its first write until released, then writes everything.
type gateWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *gateWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	first := false
	w.once.Do(func() { first = true })
	if first {
		close(w.entered)
		select {
		case <-w.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Defect 1: a completion that hands over a new record (the dispatcher dead-letters from inside a
// completion) while the queue is full must not stop the producer for good.
func TestSendFromCompletionWithFullQueueDoesNotDeadlock(t *testing.T) {
	w := &gateWriter{entered: make(chan struct{}), release: make(chan struct{})}
	p := New(w, zap.NewNop())
	start(t, p)
	second := make(chan struct{})
	p.Send(msgs("first"), func(error) {
		p.Send(msgs("dead-letter"), func(error) { close(second) })
	})
	<-w.entered
	filled := make(chan struct{})
	go func() {
		for range 4096 {
			p.Send(msgs("fill"), nil)
		}
		close(filled)
	}()
	<-filled
	close(w.release)
	select {
	case <-second:
	case <-time.After(5 * time.Second):
		t.Fatal("deadlock: the record handed over from a completion was never written")
	}
}

// keyedWriter fails, on its first call, the records listed in failFirst (by index), and logs
// every record it writes successfully, in order.
type keyedWriter struct {
	mu        sync.Mutex
	calls     int
	failFirst map[int]bool
	written   []string
}

func (w *keyedWriter) WriteMessages(ctx context.Context, ms ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	if w.calls == 1 {
		errs := make(kafka.WriteErrors, len(ms))
		for i, m := range ms {
			if w.failFirst[i] {
				errs[i] = kafka.NotLeaderForPartition
				continue
			}
			w.written = append(w.written, string(m.Value))
		}
		return errs
	}
	for _, m := range ms {
		w.written = append(w.written, string(m.Value))
	}
	return nil
}

// Defect 4: kafka-go split one key's records into two batches and only the first failed; the
// retry must not land the older record after the newer one.
func TestPartialRetryKeepsOrderPerKey(t *testing.T) {
	w := &keyedWriter{failFirst: map[int]bool{0: true}}
	p := New(w, zap.NewNop())
	start(t, p)
	done := make(chan struct{})
	batch := []kafka.Message{
		{Topic: "t", Key: []byte("k"), Value: []byte("k-old")},
		{Topic: "t", Key: []byte("j"), Value: []byte("j-1")},
		{Topic: "t", Key: []byte("k"), Value: []byte("k-new")},
	}
	p.Send(batch, func(error) { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("never durable")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	last := ""
	for _, v := range w.written {
		if v == "k-old" || v == "k-new" {
			last = v
		}
	}
	if last != "k-new" {
		t.Fatalf("written %v: the last record of key k is %q, want k-new (order per key kept)", w.written, last)
	}
}

// topicWriter fails every write that carries a record of the bad topic (as kafka-go does for a
// topic that does not exist: the whole call fails).
type topicWriter struct {
	mu      sync.Mutex
	bad     string
	written map[string]int
}

func (w *topicWriter) WriteMessages(ctx context.Context, ms ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range ms {
		if m.Topic == w.bad {
			return errors.New("[3] Unknown Topic Or Partition")
		}
	}
	for _, m := range ms {
		w.written[m.Topic]++
	}
	return nil
}

// Defect 6: a destination that cannot be written must not stop the others.
func TestBadTopicDoesNotStopOthers(t *testing.T) {
	w := &topicWriter{bad: "gone", written: map[string]int{}}
	p := New(w, zap.NewNop())
	p.FailAfter = 100 * time.Millisecond
	unhealthy := make(chan string, 1)
	p.Health = func(topic string, err error) {
		if err != nil {
			select {
			case unhealthy <- topic:
			default:
			}
		}
	}
	start(t, p)
	p.Send([]kafka.Message{{Topic: "gone", Value: []byte("x")}}, nil)
	done := make(chan struct{})
	p.Send([]kafka.Message{{Topic: "fine", Value: []byte("y")}}, func(error) { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a write to a good topic never completed while another topic failed")
	}
	select {
	case topic := <-unhealthy:
		if topic != "gone" {
			t.Fatalf("unhealthy topic %q, want gone", topic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a persistently failing topic was never reported unhealthy")
	}
}
