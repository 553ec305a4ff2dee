// Package publish writes accepted callbacks to Kafka and says whether Kafka took them.
//
// Publish returns nil only after the synchronous kafka-go WriteMessages returned nil with
// RequireAll, i.e. every in-sync replica has the record: the caller may then answer "success".
// Work is bounded: at most MaxInflight writes wait at once (ErrBusy beyond), each for at most
// WriteTimeout (ErrUnavailable after; up to 10 ms more for a write whose caller's context cannot
// end, which shares its deadline with the writes that start within the same 10 ms). A write
// that timed out may still reach Kafka later (kafka-go #1427): the platform retries and the
// normalizer's dedup absorbs the duplicate.
// While the health loop sees Kafka unreachable, Publish fails fast instead of queueing.
package publish

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Errors a caller maps to 503.
var (
	ErrBusy        = errors.New("too many writes in flight")
	ErrUnavailable = errors.New("kafka did not take the write")
)

// Writer is the part of *kafka.Writer the publisher uses.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// Readiness receives the Kafka state (ops.Readiness satisfies it).
type Readiness interface{ Set(name string, err error) }

// CheckName is the readiness check the publisher reports under.
const CheckName = "kafka"

// Config configures New.
type Config struct {
	MaxInflight  int
	WriteTimeout time.Duration
}

// Publisher bounds and times Kafka writes.
type Publisher struct {
	w       Writer
	sem     chan struct{}
	timeout time.Duration
	ready   Readiness
	down    atomic.Pointer[error] // set by the health loop while Kafka is unreachable
	seconds *prometheus.HistogramVec
	okSecs  prometheus.Observer // seconds{outcome="ok"}, resolved once

	// deadline is the write context shared by the writes that start now (writeContext).
	deadline   atomic.Pointer[sharedDeadline]
	deadlineMu sync.Mutex
}

// writeDeadlineStep is how long one shared write context is handed out. Every write that
// starts within one step (and whose caller's context cannot end: the ingress passes
// context.WithoutCancel) shares a context whose deadline is WriteTimeout after the step ends,
// so such a write waits at least WriteTimeout and at most WriteTimeout + writeDeadlineStep. A
// context and a timer of its own for every write were 3.3 % of the ingress's CPU at ~19,000
// callbacks/s (the side-by-side harness's load); now one is made per step at most.
const writeDeadlineStep = 10 * time.Millisecond

type sharedDeadline struct {
	ctx context.Context
	// cancel is never called: the context ends at its deadline, when its timer releases it,
	// and writes that took it may still be waiting on it until then.
	cancel context.CancelFunc
	until  time.Time // handed out to writes that start before this
}

// writeContext is the context a write starting at now waits under: parent with WriteTimeout,
// or, when parent can never end, the shared context of now's step.
func (p *Publisher) writeContext(parent context.Context, now time.Time) (context.Context, context.CancelFunc) {
	if parent.Done() != nil {
		return context.WithTimeout(parent, p.timeout)
	}
	if d := p.deadline.Load(); d != nil && now.Before(d.until) {
		return d.ctx, noCancel
	}
	p.deadlineMu.Lock()
	defer p.deadlineMu.Unlock()
	if d := p.deadline.Load(); d != nil && now.Before(d.until) {
		return d.ctx, noCancel
	}
	until := now.Add(writeDeadlineStep)
	// Background, not parent: the writes of other requests must not carry this one's values
	// (the writer reads none).
	ctx, cancel := context.WithDeadline(context.Background(), until.Add(p.timeout))
	p.deadline.Store(&sharedDeadline{ctx: ctx, cancel: cancel, until: until})
	return ctx, noCancel
}

func noCancel() {}

// New returns a Publisher writing through w; metrics are registered on reg.
func New(w Writer, c Config, ready Readiness, reg prometheus.Registerer) *Publisher {
	p := &Publisher{
		w:       w,
		sem:     make(chan struct{}, c.MaxInflight),
		timeout: c.WriteTimeout,
		ready:   ready,
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ingress_kafka_write_seconds",
			Help:    "Time of one synchronous Kafka write (RequireAll), by outcome (ok, error).",
			Buckets: []float64{.001, .002, .004, .006, .008, .01, .015, .02, .03, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"outcome"}),
	}
	p.okSecs = p.seconds.WithLabelValues("ok")
	reg.MustRegister(p.seconds, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ingress_kafka_inflight_writes",
		Help: "Kafka writes currently waiting for their acknowledgement.",
	}, func() float64 { return float64(len(p.sem)) }), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ingress_kafka_inflight_limit",
		Help: "The bound on Kafka writes in flight (INGRESS_MAX_INFLIGHT).",
	}, func() float64 { return float64(cap(p.sem)) }))
	return p
}

// Admit says whether Publish would refuse a write now, without taking a place: ErrUnavailable
// while the health loop sees Kafka unreachable, ErrBusy while MaxInflight writes wait. A caller
// asks before doing the work a write needs (reading and verifying a callback), so that an
// overloaded ingress refuses for little; Publish still decides.
func (p *Publisher) Admit() error {
	if err := p.downErr(); err != nil {
		return err
	}
	if len(p.sem) == cap(p.sem) {
		return ErrBusy
	}
	return nil
}

// downErr is ErrUnavailable with the health loop's reason while it sees Kafka unreachable, else nil.
func (p *Publisher) downErr() error {
	if e := p.down.Load(); e != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, *e)
	}
	return nil
}

// Publish writes msg and returns nil once Kafka acknowledged it.
func (p *Publisher) Publish(ctx context.Context, msg kafka.Message) error {
	if err := p.downErr(); err != nil {
		return err
	}
	select {
	case p.sem <- struct{}{}:
	default:
		return ErrBusy
	}
	defer func() { <-p.sem }()
	start := time.Now()
	ctx, cancel := p.writeContext(ctx, start)
	defer cancel()
	err := p.w.WriteMessages(ctx, msg)
	if err != nil {
		p.seconds.WithLabelValues("error").Observe(time.Since(start).Seconds())
		p.ready.Set(CheckName, fmt.Errorf("last write failed: %w", err))
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	p.okSecs.Observe(time.Since(start).Seconds())
	return nil
}

// SetHealth records what the health loop saw: nil clears readiness and the fast-fail gate.
func (p *Publisher) SetHealth(err error) {
	if err == nil {
		p.down.Store(nil)
	} else {
		p.down.Store(&err)
	}
	p.ready.Set(CheckName, err)
}

// Close flushes and closes the writer. Call it after the last Publish returned.
func (p *Publisher) Close() error {
	err := p.w.Close()
	// kafka-go's Writer.Close leaves a Transport it was given running; close its connections.
	if kw, ok := p.w.(*kafka.Writer); ok {
		if tr, ok := kw.Transport.(*kafka.Transport); ok {
			tr.CloseIdleConnections()
		}
	}
	if err != nil {
		return fmt.Errorf("close kafka writer: %w", err)
	}
	return nil
}
