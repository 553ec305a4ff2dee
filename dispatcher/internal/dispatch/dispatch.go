// Package dispatch is the dispatcher's consumer loop. It reads unified status events from
// orders.status.v1, sends each to the destinations the routing table names (downstream topics,
// Dangdang write-back) and commits an event's offset only once its outcome is final and recorded
// at every destination: copied to its topics (acks=all), and for Dangdang accepted, rejected or
// skipped and recorded in dangdang.results.v1, or dead-lettered to orders.status.dlq.v1.
// Per partition, the highest offset below which every event is finished is committed; a crash or
// a stop replays from there, never skips (delivery is at least once; event_id identifies repeats).
//
// One completion model runs through it: every asynchronous step (a topic copy, a Dangdang
// write-back, a results record, a DLQ write) completes exactly once with an error value, and the
// tracker (tracker.go) turns an event's completions into its offset. The stop is one
// shutdown.Stop value handed to the producer and the write-back.
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
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/dispatcher/internal/dangdang"
	"github.com/orderpipe/pipeline/dispatcher/internal/produce"
	"github.com/orderpipe/pipeline/dispatcher/internal/routing"
	"github.com/orderpipe/pipeline/dispatcher/internal/shutdown"
	"github.com/orderpipe/pipeline/dispatcher/internal/writeback"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/ops"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/plumbing/tracing"
	"github.com/orderpipe/pipeline/schemas"
)

// Service is the dlq_service header value.
const Service = "dispatcher"

// Reader is what the loop needs of *kafkaio.FetchReader (or *kafka.Reader with CommitInterval 0).
type Reader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Config tunes the loop.
type Config struct {
	InputTopic   string
	ResultsTopic string
	DLQTopic     string
	// MaxInFlight bounds the records tracked at once (fetched, offset not yet passed by the commit
	// mark): memory, and backpressure; default 50,000.
	MaxInFlight int
	// MaxPartitionSpan is how many records one partition may hold before the waiting Dangdang
	// orders at its head are parked in the DLQ; default 10,000 (0 < span <= MaxInFlight).
	MaxPartitionSpan int
	// CommitInterval is how often finished offsets are committed; default 1 s.
	CommitInterval time.Duration
	// Grace is how long a stop may take to flush and record what is pending; default 10 s.
	Grace time.Duration
	// StallAfter is how long fetching may wait for room, or commits may fail, before readiness
	// turns false; default 30 s.
	StallAfter time.Duration
	// Tracing reads each event's trace context, so its Dangdang call continues the trace; nil
	// means none is read.
	Tracing *tracing.Tracing
}

func (c *Config) defaults() {
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 50000
	}
	if c.MaxPartitionSpan <= 0 {
		c.MaxPartitionSpan = 10000
	}
	c.MaxPartitionSpan = min(c.MaxPartitionSpan, c.MaxInFlight)
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Second
	}
	if c.Grace <= 0 {
		c.Grace = 10 * time.Second
	}
	if c.StallAfter <= 0 {
		c.StallAfter = 30 * time.Second
	}
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
			Help: "Records written to orders.status.dlq.v1, by reason (decode, validate, panic, unknown_shop, dangdang_retries_exhausted, dangdang_parked)."}, []string{"reason"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dispatcher_events_in_flight", Help: "Records tracked: fetched, and their offset not yet passed by the commit mark (bounded by MAX_IN_FLIGHT)."}),
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
	tr    *tracker
}

// New wires a dispatcher. ready may be nil.
func New(cfg Config, r Reader, table *routing.Table, prod *produce.Producer, sink *writeback.Sink, m *Metrics, ready *ops.Readiness, log *zap.Logger) *Dispatcher {
	cfg.defaults()
	if ready == nil {
		ready = ops.NewReadiness()
	}
	d := &Dispatcher{cfg: cfg, r: r, table: table, prod: prod, sink: sink, m: m, ready: ready, log: log,
		tr: newTracker(cfg.MaxInFlight, cfg.MaxPartitionSpan)}
	d.tr.onReleased = func(n int) { m.InFlight.Sub(float64(n)) }
	return d
}

// Results records Dangdang outcomes in dangdang.results.v1: its Report is the write-back's
// report function.
type Results struct {
	Topic string
	Prod  *produce.Producer
}

// Report writes r's result and completes r's items once it is durable.
func (rr *Results) Report(r writeback.Report) {
	v, err := json.Marshal(r.Result)
	if err != nil {
		r.Complete(fmt.Errorf("encode result: %w", err))
		return
	}
	rr.Prod.Send([]kafka.Message{{Topic: rr.Topic, Key: []byte(r.Result.DangdangOrderID), Value: v,
		Headers: []kafka.Header{{Key: schemas.HeaderContentType, Value: []byte("application/json")}}}}, r.Complete)
}

// Run consumes until ctx ends, then drains within Grace: pending batches are flushed, outcomes
// recorded, finished offsets committed. It returns nil on a clean stop.
func (d *Dispatcher) Run(ctx context.Context) error {
	// The parts' soft stop is the end of fetching, so nothing is handed to a part that already
	// drained; the hard stop comes Grace later.
	fetching, fetched := context.WithCancel(context.WithoutCancel(ctx))
	defer fetched()
	stop, abandon := shutdown.New(fetching, d.cfg.Grace)
	defer abandon()
	parts := make(chan struct{}, 3)
	go func() { _ = d.prod.Run(stop); parts <- struct{}{} }()
	go func() { _ = d.sink.Run(stop); parts <- struct{}{} }()
	go func() { d.commitLoop(ctx); parts <- struct{}{} }()

	err := d.fetchLoop(ctx)
	fetched()
	d.ready.Drain()
	select {
	case <-d.tr.Idle():
	case <-stop.Hard().Done():
		d.log.Warn("shutdown grace period over, abandoning unfinished events", zap.Int("events", d.tr.Unsettled()))
	}
	d.commit()
	abandon()
	for range 3 {
		<-parts
	}
	return err
}

func (d *Dispatcher) fetchLoop(ctx context.Context) error {
	b := retry.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}.New()
	for {
		if err := d.acquire(ctx); err != nil {
			return nil
		}
		m, err := d.r.FetchMessage(ctx)
		if err != nil {
			d.tr.Release()
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return nil
			}
			d.ready.Set("consumer", err)
			d.log.Warn("kafka fetch failed", zap.Error(err))
			if retry.Sleep(ctx, b.Next()) != nil {
				return nil
			}
			continue
		}
		b.Reset()
		d.ready.Set("consumer", nil)
		d.m.Consumed.Inc()
		d.m.InFlight.Inc()
		d.handle(ctx, m)
	}
}

// acquire waits for room to track one more record; a wait longer than StallAfter turns
// readiness false until there is room again.
func (d *Dispatcher) acquire(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, d.cfg.StallAfter)
	err := d.tr.Acquire(wctx)
	cancel()
	if err == nil || ctx.Err() != nil {
		return err
	}
	d.ready.Set("in_flight", fmt.Errorf("fetching stopped: MAX_IN_FLIGHT (%d) records tracked for %s", d.cfg.MaxInFlight, d.cfg.StallAfter))
	d.log.Error("fetching stopped, in-flight bound reached", zap.Int("events", d.cfg.MaxInFlight))
	err = d.tr.Acquire(ctx)
	d.ready.Set("in_flight", nil)
	return err
}

func (d *Dispatcher) commitLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.CommitInterval)
	defer t.Stop()
	var failingSince time.Time
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		d.tr.ParkOverSpan()
		switch err := d.commit(); {
		case err == nil:
			failingSince = time.Time{}
			d.ready.Set("commit", nil)
		case failingSince.IsZero():
			failingSince = time.Now()
		case time.Since(failingSince) >= d.cfg.StallAfter:
			d.ready.Set("commit", err)
		}
	}
}

// commit commits what the tracker says is finished.
func (d *Dispatcher) commit() error {
	cs := d.tr.Commits()
	if len(cs) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(cs))
	for i, c := range cs {
		// kafka-go commits a message's offset + 1: the next offset to read.
		msgs[i] = kafka.Message{Topic: d.cfg.InputTopic, Partition: c.Partition, Offset: c.Offset - 1}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.r.CommitMessages(ctx, msgs...)
	for _, c := range cs {
		d.tr.Committed(c, err)
	}
	if err != nil {
		d.m.Commits.WithLabelValues("error").Inc()
		d.log.Warn("offset commit failed", zap.String("topic", d.cfg.InputTopic), zap.Error(err))
		return fmt.Errorf("commit offsets: %w", err)
	}
	d.m.Commits.WithLabelValues("ok").Inc()
	return nil
}

// deadLetter writes the source record unchanged to the DLQ with headers saying why; the part
// completes once that write is durable. An event is dead-lettered at most once.
func (d *Dispatcher) deadLetter(e *Event, reason, detail string) {
	if !e.dead.CompareAndSwap(false, true) {
		e.Done(nil)
		return
	}
	d.m.DLQ.WithLabelValues(reason).Inc()
	d.log.Warn("event dead-lettered", zap.String("reason", reason), zap.String("topic", e.Msg.Topic),
		zap.Int("partition", e.Msg.Partition), zap.Int64("offset", e.Msg.Offset), zap.String("error", detail))
	dead := kafkaio.DeadLetter(e.Msg, Service, reason, detail, time.Now())
	dead.Topic = d.cfg.DLQTopic
	d.prod.Send([]kafka.Message{dead}, e.Done)
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

// unmarshalEvent decodes a unified event: github.com/goccy/go-json, as the normalizer decodes,
// a drop-in for encoding/json (same tags, Unmarshaler, errors on invalid input). With
// encoding/json, which scans every value twice, decoding was a fifth of the dispatcher's CPU at
// 3,000 callbacks/s (docs/performance.md). TestEventDecoderAgreesWithStdlib and its fuzzer hold
// the two to the same results.
var unmarshalEvent = gojson.Unmarshal

// plan decodes, validates and routes one record. It is pure; a panic in it is reported as poison.
func (d *Dispatcher) plan(m kafka.Message) (topics []string, items []writeback.Item, reason string, err error) {
	defer func() {
		if p := recover(); p != nil {
			topics, items, reason, err = nil, nil, "panic", fmt.Errorf("panic: %v", p)
		}
	}()
	var ev schemas.StatusEvent
	if err := unmarshalEvent(m.Value, &ev); err != nil {
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

// handle starts every part of one fetched record; each completes through the tracker.
func (d *Dispatcher) handle(ctx context.Context, m kafka.Message) {
	topics, items, reason, err := d.plan(m)
	if err != nil {
		d.deadLetter(d.tr.Track(m, 1), reason, err.Error())
		return
	}
	parts := len(items)
	if len(topics) > 0 {
		parts++
	}
	if parts == 0 {
		d.m.Routed.WithLabelValues("none").Inc()
		d.tr.Track(m, 1).Done(nil)
		return
	}
	e := d.tr.Track(m, parts)
	if len(topics) > 0 {
		msgs := make([]kafka.Message, len(topics))
		for i, t := range topics {
			msgs[i] = kafka.Message{Topic: t, Key: m.Key, Value: m.Value, Headers: m.Headers}
			d.m.Routed.WithLabelValues(t).Inc()
		}
		d.prod.Send(msgs, e.Done)
	}
	var sc trace.SpanContext
	if d.cfg.Tracing != nil && len(items) > 0 {
		sc = trace.SpanContextFromContext(d.cfg.Tracing.FromMessage(context.Background(), m))
	}
	for _, it := range items {
		it.Trace = sc
		it.Done = func(o writeback.Outcome) { d.dangdangDone(e, o) }
		d.m.Routed.WithLabelValues("dangdang/" + it.Shop).Inc()
		e.OnPark(func() { d.sink.Park(it.Shop, it.OrderID) })
		if err := d.sink.Submit(ctx, it); err != nil {
			// Only an unknown shop: the table was validated against the shops.
			d.deadLetter(e, "unknown_shop", err.Error())
		}
	}
}

// dangdangDone completes an event's Dangdang part with the write-back's outcome.
func (d *Dispatcher) dangdangDone(e *Event, o writeback.Outcome) {
	switch {
	case o.Err != nil:
		e.Done(o.Err)
	case o.DLQReason != "":
		d.deadLetter(e, o.DLQReason, o.Detail)
	default:
		e.Done(nil)
	}
}
