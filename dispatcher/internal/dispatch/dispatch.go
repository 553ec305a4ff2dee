// Package dispatch is the dispatcher's consumer loop. It reads unified status events from
// orders.status.v1, sends each to the destinations the routing table names (downstream topics,
// Dangdang write-back) and commits an event's offset only once its outcome is final and recorded
// at every destination: copied to its topics (acks=all), and for Dangdang accepted, rejected or
// skipped and recorded in dangdang.results.v1, or dead-lettered to orders.status.dlq.v1.
// Per partition, the highest offset below which every event is finished is committed; a crash or
// a stop replays from there, never skips (delivery is at least once; event_id identifies repeats).
//
// Records that cannot be decoded or validated go to the DLQ unchanged, with headers saying why and
// where they came from, and the loop goes on. Stale events (stale: true) are routed to topics as
// they are and never sent to Dangdang (recorded as skipped "stale").
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/dispatcher/internal/dangdang"
	"github.com/orderpipe/pipeline/dispatcher/internal/produce"
	"github.com/orderpipe/pipeline/dispatcher/internal/routing"
	"github.com/orderpipe/pipeline/dispatcher/internal/writeback"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/ops"
	"github.com/orderpipe/pipeline/plumbing/tracing"
	"github.com/orderpipe/pipeline/schemas"
)

// Service is the dlq_service header value.
const Service = "dispatcher"

// Reader is what the loop needs of *kafka.Reader (a consumer group reader, CommitInterval 0).
type Reader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Config tunes the loop.
type Config struct {
	InputTopic   string
	ResultsTopic string
	DLQTopic     string
	// MaxInFlight bounds events fetched but not finished (memory, and how far a paused shop can
	// hold the others back); default 50,000.
	MaxInFlight int
	// CommitInterval is how often finished offsets are committed; default 1 s.
	CommitInterval time.Duration
	// Grace is how long a stop may take to flush and record what is pending; default 10 s.
	Grace time.Duration
	// Tracing reads each event's trace context, so its Dangdang call continues the trace; nil
	// means none is read.
	Tracing *tracing.Tracing
}

// Metrics of the loop.
type Metrics struct {
	Consumed prometheus.Counter
	Routed   *prometheus.CounterVec // destination
	DLQ      *prometheus.CounterVec // reason
	InFlight prometheus.Gauge
	Commits  *prometheus.CounterVec // outcome
}

// NewMetrics registers the loop's metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Consumed: prometheus.NewCounter(prometheus.CounterOpts{Name: "dispatcher_events_consumed_total", Help: "Records fetched from the input topic."}),
		Routed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_events_routed_total",
			Help: "Events sent per destination: a topic name, dangdang/<shop>, or none."}, []string{"destination"}),
		DLQ: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_dlq_total",
			Help: "Records written to orders.status.dlq.v1, by reason (decode, validate, panic, dangdang_retries_exhausted)."}, []string{"reason"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dispatcher_events_in_flight", Help: "Events fetched whose outcome is not final yet."}),
		Commits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_offset_commits_total",
			Help: "Offset commits by outcome (ok, error)."}, []string{"outcome"}),
	}
	reg.MustRegister(m.Consumed, m.Routed, m.DLQ, m.InFlight, m.Commits)
	return m
}

// Dispatcher is the loop. Build with New, run with Run.
type Dispatcher struct {
	cfg   Config
	r     Reader
	table *routing.Table
	prod  *produce.Producer
	sink  *writeback.Sink
	log   *zap.Logger
	m     *Metrics
	ready *ops.Readiness
	offs  *offsets
	sem   chan struct{}
	hard  context.Context
}

// New wires a dispatcher. ready may be nil.
func New(cfg Config, r Reader, table *routing.Table, prod *produce.Producer, sink *writeback.Sink, m *Metrics, ready *ops.Readiness, log *zap.Logger) *Dispatcher {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 50000
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	if ready == nil {
		ready = ops.NewReadiness()
	}
	return &Dispatcher{cfg: cfg, r: r, table: table, prod: prod, sink: sink, m: m, ready: ready, log: log,
		offs: newOffsets(), sem: make(chan struct{}, cfg.MaxInFlight)}
}

// ResultsRecorder writes dangdang.results.v1 records through a producer.
type ResultsRecorder struct {
	Topic string
	Prod  *produce.Producer
}

// Record implements writeback.Recorder.
func (rr *ResultsRecorder) Record(ctx context.Context, r writeback.Result, done func()) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	return rr.Prod.Send(ctx, []kafka.Message{{Topic: rr.Topic, Key: []byte(r.DangdangOrderID), Value: v,
		Headers: []kafka.Header{{Key: schemas.HeaderContentType, Value: []byte("application/json")}}}}, done)
}

// Run consumes until ctx ends, then drains within Grace: pending batches are flushed, outcomes
// recorded, finished offsets committed. It returns nil on a clean stop.
func (d *Dispatcher) Run(ctx context.Context) error {
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	d.hard = hard
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	go func() {
		select {
		case <-runCtx.Done():
		case <-hard.Done():
			return
		}
		t := time.NewTimer(d.cfg.Grace)
		defer t.Stop()
		select {
		case <-t.C:
			d.log.Warn("shutdown grace period over, abandoning unfinished events", zap.Int("events", d.offs.Pending()))
			cancelHard()
		case <-hard.Done():
		}
	}()

	var wg sync.WaitGroup
	wg.Go(func() { _ = d.prod.Run(hard) })
	wg.Go(func() { _ = d.sink.Run(runCtx, hard) })
	wg.Go(func() { d.commitLoop(runCtx) })

	err := d.fetchLoop(runCtx)
	cancelRun()
	d.ready.Drain()

	// Wait for what was fetched to finish, or for the grace period to end.
	tick := time.NewTicker(10 * time.Millisecond)
	for d.offs.Pending() > 0 && hard.Err() == nil {
		select {
		case <-tick.C:
		case <-hard.Done():
		}
	}
	tick.Stop()
	d.commit(context.Background())
	cancelHard()
	wg.Wait()
	return err
}

func (d *Dispatcher) fetchLoop(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		m, err := d.r.FetchMessage(ctx)
		if err != nil {
			<-d.sem
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, context.Canceled) {
				return nil
			}
			d.ready.Set("consumer", err)
			d.log.Warn("kafka fetch failed", zap.Error(err))
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		d.ready.Set("consumer", nil)
		d.m.Consumed.Inc()
		d.m.InFlight.Inc()
		d.offs.Add(m.Partition, m.Offset)
		d.handle(m)
	}
}

func (d *Dispatcher) commitLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			d.commit(ctx)
		case <-ctx.Done():
			return
		}
	}
}

func (d *Dispatcher) commit(ctx context.Context) {
	parts := d.offs.Committable()
	if len(parts) == 0 {
		return
	}
	msgs := make([]kafka.Message, 0, len(parts))
	for _, p := range sortedParts(parts) {
		msgs = append(msgs, kafka.Message{Topic: d.cfg.InputTopic, Partition: p, Offset: parts[p]})
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.r.CommitMessages(cctx, msgs...); err != nil {
		d.offs.Requeue(parts)
		d.m.Commits.WithLabelValues("error").Inc()
		d.log.Warn("offset commit failed", zap.String("topic", d.cfg.InputTopic), zap.Error(err))
		return
	}
	d.m.Commits.WithLabelValues("ok").Inc()
}

// event tracks one fetched record until every destination has its final outcome.
type event struct {
	d         *Dispatcher
	msg       kafka.Message
	remaining atomic.Int32
	dlq       atomic.Bool
}

func (e *event) partDone() {
	if e.remaining.Add(-1) == 0 {
		e.d.offs.Done(e.msg.Partition, e.msg.Offset)
		e.d.m.InFlight.Dec()
		<-e.d.sem
	}
}

// deadLetter writes the source record unchanged to the DLQ with headers saying why; the part is
// done once that write is durable. An event is dead-lettered at most once.
func (e *event) deadLetter(reason, detail string) {
	if !e.dlq.CompareAndSwap(false, true) {
		e.partDone()
		return
	}
	d := e.d
	d.m.DLQ.WithLabelValues(reason).Inc()
	d.log.Warn("event dead-lettered", zap.String("reason", reason), zap.String("topic", e.msg.Topic),
		zap.Int("partition", e.msg.Partition), zap.Int64("offset", e.msg.Offset), zap.String("error", detail))
	dead := kafkaio.DeadLetter(e.msg, Service, reason, detail, time.Now())
	dead.Topic = d.cfg.DLQTopic
	_ = d.prod.Send(d.hard, []kafka.Message{dead}, e.partDone)
}

// DistriStatus maps a unified delivery status to Dangdang's distriStatus; 0 means not sent.
func DistriStatus(status string) int {
	switch status {
	case schemas.StatusDelivered:
		return dangdang.DistriDelivered
	case schemas.StatusDeliveryFailed:
		return dangdang.DistriFailed
	}
	return 0
}

func validate(ev *schemas.StatusEvent) error {
	var missing []string
	for name, v := range map[string]string{"event_id": ev.EventID, "platform": ev.Platform, "kind": ev.Kind, "order_id": ev.OrderID, "status": ev.Status} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if ev.OccurredAt.IsZero() {
		missing = append(missing, "occurred_at")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required fields %v", missing)
	}
	return nil
}

// plan decodes, validates and routes one record. It is pure; a panic in it is reported as poison.
func (d *Dispatcher) plan(m kafka.Message) (topics []string, items []writeback.Item, reason string, err error) {
	defer func() {
		if p := recover(); p != nil {
			topics, items, reason, err = nil, nil, "panic", fmt.Errorf("panic: %v", p)
		}
	}()
	var ev schemas.StatusEvent
	if err := json.Unmarshal(m.Value, &ev); err != nil {
		return nil, nil, "decode", err
	}
	if err := validate(&ev); err != nil {
		return nil, nil, "validate", err
	}
	dest := d.table.Route(&ev)
	for _, t := range dest.Dangdang {
		st := DistriStatus(ev.Status)
		if st == 0 {
			continue
		}
		items = append(items, writeback.Item{Shop: t.Shop, OrderID: t.OrderID, DistriStatus: st, OccurredAt: ev.OccurredAt.Time,
			Stale: ev.Stale, EventID: ev.EventID, Platform: ev.Platform, EventOrderID: ev.OrderID})
	}
	return dest.Topics, items, "", nil
}

func (d *Dispatcher) handle(m kafka.Message) {
	e := &event{d: d, msg: m}
	topics, items, reason, err := d.plan(m)
	if err != nil {
		e.remaining.Store(1)
		e.deadLetter(reason, err.Error())
		return
	}
	parts := len(items)
	if len(topics) > 0 {
		parts++
	}
	if parts == 0 {
		d.m.Routed.WithLabelValues("none").Inc()
		e.remaining.Store(1)
		e.partDone()
		return
	}
	e.remaining.Store(int32(parts))
	if len(topics) > 0 {
		msgs := make([]kafka.Message, len(topics))
		for i, t := range topics {
			msgs[i] = kafka.Message{Topic: t, Key: m.Key, Value: m.Value, Headers: m.Headers}
			d.m.Routed.WithLabelValues(t).Inc()
		}
		_ = d.prod.Send(d.hard, msgs, e.partDone)
	}
	var sc trace.SpanContext
	if d.cfg.Tracing != nil {
		sc = trace.SpanContextFromContext(d.cfg.Tracing.FromMessage(context.Background(), m))
	}
	for _, it := range items {
		it.Trace = sc
		d.m.Routed.WithLabelValues("dangdang/" + it.Shop).Inc()
		it.Done = func(outcome, reason string) {
			if outcome == writeback.OutcomeDeadLettered {
				e.deadLetter("dangdang_retries_exhausted", reason)
				return
			}
			e.partDone()
		}
		if err := d.sink.Submit(d.hard, it); err != nil {
			// Only an unknown shop (the table was validated against the shops) or a hard stop.
			if errors.Is(err, writeback.ErrUnknownShop) {
				e.deadLetter("unknown_shop", err.Error())
			}
		}
	}
}
