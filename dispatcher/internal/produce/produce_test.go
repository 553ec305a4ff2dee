package produce

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scriptWriter answers each WriteMessages call with the next scripted error and remembers what
// it was asked to write.
type scriptWriter struct {
	mu     sync.Mutex
	script []func(n int) error
	calls  [][]string
}

func (w *scriptWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var vals []string
	for _, m := range msgs {
		vals = append(vals, string(m.Value))
	}
	w.calls = append(w.calls, vals)
	if len(w.script) == 0 {
		return nil
	}
	f := w.script[0]
	w.script = w.script[1:]
	return f(len(msgs))
}

func msgs(vals ...string) []kafka.Message {
	out := make([]kafka.Message, len(vals))
	for i, v := range vals {
		out[i] = kafka.Message{Topic: "t", Value: []byte(v)}
	}
	return out
}

func TestRetriesOnlyFailedRecordsThenCallsBack(t *testing.T) {
	w := &scriptWriter{script: []func(int) error{
		func(n int) error { // the second record fails
			errs := make(kafka.WriteErrors, n)
			errs[1] = kafka.NotLeaderForPartition
			return errs
		},
	}}
	p := New(w, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { p.Run(ctx); close(stopped) }()
	done := make(chan struct{})
	if err := p.Send(ctx, msgs("a", "b", "c"), func() { close(done) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("callback never ran")
	}
	cancel()
	<-stopped
	if len(w.calls) != 2 || len(w.calls[0]) != 3 || len(w.calls[1]) != 1 || w.calls[1][0] != "b" {
		t.Fatalf("writes = %v, want [a b c] then [b]", w.calls)
	}
}

func TestNoCallbackWithoutDurableWrite(t *testing.T) {
	w := &scriptWriter{}
	for range 1000 {
		w.script = append(w.script, func(int) error { return errors.New("broker down") })
	}
	p := New(w, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { p.Run(ctx); close(stopped) }()
	called := make(chan struct{}, 1)
	p.Send(ctx, msgs("a"), func() { called <- struct{}{} })
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-stopped
	select {
	case <-called:
		t.Fatal("callback ran although no write succeeded")
	default:
	}
}
