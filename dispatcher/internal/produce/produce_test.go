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

	"github.com/orderpipe/pipeline/dispatcher/internal/shutdown"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs p until the test ends (or the returned stop is called: a hard stop at once).
func start(t *testing.T, p *Producer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	st, abandon := shutdown.New(ctx, 0)
	stopped := make(chan struct{})
	go func() { p.Run(st); close(stopped) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); abandon(); <-stopped }) }
	t.Cleanup(stop)
	return stop
}

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
		out[i] = kafka.Message{Topic: "t", Key: []byte(v), Value: []byte(v)}
	}
	return out
}

func waitDone(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("completion never ran")
	}
	return nil
}

func TestRetriesOnlyFailedKeysThenCompletes(t *testing.T) {
	w := &scriptWriter{script: []func(int) error{
		func(n int) error { // the second record fails
			errs := make(kafka.WriteErrors, n)
			errs[1] = kafka.NotLeaderForPartition
			return errs
		},
	}}
	p := New(w, zap.NewNop())
	stop := start(t, p)
	done := make(chan error, 1)
	p.Send(msgs("a", "b", "c"), func(err error) { done <- err })
	if err := waitDone(t, done); err != nil {
		t.Fatal(err)
	}
	stop()
	if len(w.calls) != 2 || len(w.calls[0]) != 3 || len(w.calls[1]) != 1 || w.calls[1][0] != "b" {
		t.Fatalf("writes = %v, want [a b c] then [b]", w.calls)
	}
}

// Nothing is acknowledged without a durable write: a stop completes the records with an error.
func TestStopCompletesUnwrittenWithError(t *testing.T) {
	w := &scriptWriter{}
	for range 1000 {
		w.script = append(w.script, func(int) error { return errors.New("broker down") })
	}
	p := New(w, zap.NewNop())
	stop := start(t, p)
	done := make(chan error, 2)
	p.Send(msgs("a"), func(err error) { done <- err })
	time.Sleep(200 * time.Millisecond)
	stop()
	if err := waitDone(t, done); !errors.Is(err, shutdown.ErrStopped) {
		t.Fatalf("completion = %v, want ErrStopped", err)
	}
	p.Send(msgs("late"), func(err error) { done <- err })
	if err := waitDone(t, done); !errors.Is(err, shutdown.ErrStopped) {
		t.Fatalf("completion after the stop = %v, want ErrStopped", err)
	}
}

// A send that spans topics completes once, after both topics are durable.
func TestSendAcrossTopicsCompletesOnce(t *testing.T) {
	w := &scriptWriter{}
	p := New(w, zap.NewNop())
	start(t, p)
	done := make(chan error, 2)
	p.Send([]kafka.Message{{Topic: "x", Value: []byte("1")}, {Topic: "y", Value: []byte("2")}}, func(err error) { done <- err })
	if err := waitDone(t, done); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if len(done) != 0 {
		t.Fatal("completion ran twice")
	}
}
