// Package publish writes accepted callbacks to Kafka and says whether Kafka took them.
//
// Publish returns nil only after the synchronous kafka-go WriteMessages returned nil with
// RequireAll, i.e. every in-sync replica has the record: the caller may then answer "success".
// Work is bounded: at most MaxInflight writes wait at once (ErrBusy beyond), each for at most
// WriteTimeout (ErrUnavailable after). A write that timed out may still reach Kafka later
// (kafka-go #1427): the platform retries and the normalizer's dedup absorbs the duplicate.
// While the health loop sees Kafka unreachable, Publish fails fast instead of queueing.
package publish

import (
	"context"
	"errors"
	"fmt"
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
}

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

// Publish writes msg and returns nil once Kafka acknowledged it.
func (p *Publisher) Publish(ctx context.Context, msg kafka.Message) error {
	if e := p.down.Load(); e != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, *e)
	}
	select {
	case p.sem <- struct{}{}:
	default:
		return ErrBusy
	}
	defer func() { <-p.sem }()
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	start := time.Now()
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
