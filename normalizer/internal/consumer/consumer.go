// Package consumer is the normalizer's loop: it fetches raw callback records in batches, maps
// them (package normalize), decides dedup and staleness for the whole batch in one pipelined
// Redis round trip (package orderstate), writes the unified events and the dead letters to
// Kafka, confirms the dedup claims, and only then commits the batch's offsets.
//
// Guarantees: at-least-once. A record's offset is committed only after everything it produced is
// acknowledged by Kafka (acks=all), so a crash or a stop replays and never skips; the replay is
// absorbed by dedup, and an event replayed before its claim was confirmed is emitted again with
// the same event_id and the same stale flag. Per-order order holds because records and events
// of one order share a key and so a partition, and a batch is written in fetch order. Poison
// records (undecodable, invalid, or a mapper panic) go to the dead-letter topic and the loop goes
// on; Kafka or Redis failures are retried with a bounded, jittered backoff while readiness
// reports them, and nothing past them is committed.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/normalizer/internal/normalize"
	"github.com/orderpipe/pipeline/normalizer/internal/orderstate"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/schemas"
)

// Readiness names the consumer reports under.
const (
	CheckKafka = "kafka"
	CheckRedis = "redis"
)

// Reader is the part of *kafka.Reader the loop uses.
type Reader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Writer is the part of *kafka.Writer the loop uses.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Store decides dedup and staleness (orderstate.Store).
type Store interface {
	Claim(ctx context.Context, evs []orderstate.Event) ([]orderstate.Result, error)
	Confirm(ctx context.Context, evs []orderstate.Event) error
}

// Readiness receives dependency health (ops.Readiness).
type Readiness interface {
	Set(name string, err error)
}

// Config wires a Consumer.
type Config struct {
	Reader  Reader
	Status  Writer // the unified status topic
	DLQ     Writer // the raw dead-letter topic
	Store   Store
	Metrics *Metrics
	Ready   Readiness
	Log     *zap.Logger
	// Map turns a record value into events; default normalize.Record. Tests inject panics here.
	Map func(value []byte) (normalize.Result, error)
	// MaxBatch is the most records processed together; default 1000.
	MaxBatch int
	// BackoffMin and BackoffMax bound the retry delay after a Kafka or Redis failure (the delay
	// doubles from min to max, with jitter); defaults 100 ms and 5 s.
	BackoffMin, BackoffMax time.Duration
	// CommitAttempts bounds commit retries; an offset left uncommitted only causes a harmless
	// replay. Default 5.
	CommitAttempts int
	// Now is the clock for dlq_time; default time.Now.
	Now func() time.Time
}

// Consumer runs the loop.
type Consumer struct {
	c Config
	// inflight counts, per event_id, the batches of this process that emit it and were not yet
	// confirmed when the current claim was sent (see claim).
	mu        sync.Mutex
	inflight  map[string]int
	confirmed []string // ids confirmed since the last claim
}

// New returns a Consumer; it panics on nothing and validates the wiring.
func New(c Config) (*Consumer, error) {
	if c.Reader == nil || c.Status == nil || c.DLQ == nil || c.Store == nil || c.Metrics == nil || c.Log == nil {
		return nil, errors.New("consumer: reader, writers, store, metrics and logger are required")
	}
	if c.Map == nil {
		c.Map = normalize.Record
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 100 * time.Millisecond
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = 5 * time.Second
	}
	if c.CommitAttempts <= 0 {
		c.CommitAttempts = 5
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Ready == nil {
		c.Ready = nopReady{}
	}
	return &Consumer{c: c, inflight: map[string]int{}}, nil
}

type nopReady struct{}

func (nopReady) Set(string, error) {}

// Run fetches until ctx ends. A record's offset is committed only after its output is durable,
// so a stop at any point replays, never skips; dedup makes a replay harmless. It returns nil on
// a clean stop (ctx ended).
//
// The loop is a pipeline of goroutines, each handling one batch at a time, in fetch order:
// fetch (kafka-go) → prepare (decode and map, parallel, CPU only) → claim (Redis) → emit
// (Kafka) → finish (Redis confirm, then commit). So the claim of batch N+1, the writes of batch N
// and the confirm and commit of batch N-1 overlap, while each kind of call stays strictly ordered:
// guard decisions follow fetch order, writes follow fetch order (per-order order holds), and a
// batch is committed only after its own writes were acknowledged and its claims confirmed, and
// after every earlier batch was committed.
func (cs *Consumer) Run(ctx context.Context) error {
	c := &cs.c
	// The in-flight bookkeeping belongs to one run: a batch claimed but never emitted by an
	// earlier, cancelled run must not make this run drop its replay.
	cs.mu.Lock()
	cs.inflight, cs.confirmed = map[string]int{}, nil
	cs.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan kafka.Message, c.MaxBatch)
	prepared := make(chan *batch, 1)
	claimed := make(chan *batch, 1)
	emitted := make(chan *batch, 1)
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	stage := func(in <-chan *batch, out chan<- *batch, f func(context.Context, *batch) error) {
		defer wg.Done()
		for {
			var b *batch
			select {
			case <-ctx.Done():
				return
			case b = <-in:
			}
			if err := f(ctx, b); err != nil {
				if ctx.Err() == nil {
					errOnce.Do(func() { runErr = err })
					cancel()
				}
				return
			}
			if out == nil {
				continue
			}
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
		}
	}
	wg.Add(5)
	go func() {
		defer wg.Done()
		cs.fetch(ctx, msgs)
	}()
	go func() {
		defer wg.Done()
		cs.batches(ctx, msgs, prepared)
	}()
	go stage(prepared, claimed, cs.claim)
	go stage(claimed, emitted, cs.emit)
	go stage(emitted, nil, cs.finish)
	wg.Wait()
	return runErr
}

// batches cuts the fetched records into batches (whatever is buffered, up to MaxBatch) and
// prepares each.
func (cs *Consumer) batches(ctx context.Context, in <-chan kafka.Message, out chan<- *batch) {
	c := &cs.c
	for {
		msgs := make([]kafka.Message, 0, c.MaxBatch)
		select {
		case <-ctx.Done():
			return
		case m := <-in:
			msgs = append(msgs, m)
		}
	drain:
		for len(msgs) < c.MaxBatch {
			select {
			case m := <-in:
				msgs = append(msgs, m)
			default:
				break drain
			}
		}
		b := cs.prepare(msgs)
		select {
		case out <- b:
		case <-ctx.Done():
			return
		}
	}
}

func (cs *Consumer) fetch(ctx context.Context, out chan<- kafka.Message) {
	c := &cs.c
	delay := c.BackoffMin
	for {
		m, err := c.Reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.Ready.Set(CheckKafka, fmt.Errorf("fetch: %w", err))
			c.Log.Warn("fetch failed", zap.Error(err))
			if !sleep(ctx, jitter(delay)) {
				return
			}
			delay = min(delay*2, c.BackoffMax)
			continue
		}
		delay = c.BackoffMin
		select {
		case out <- m:
		case <-ctx.Done():
			return
		}
	}
}

// item is one fetched record on its way through a batch.
type item struct {
	msg      kafka.Message
	platform string
	res      normalize.Result
	err      error
	out      []kafka.Message // the events' records, encoded as not stale
	outErr   []error
}

// pending is one event of the batch with its claim.
type pending struct {
	it     *item
	ev     schemas.StatusEvent
	msg    kafka.Message
	msgErr error
	claim  orderstate.Event
	result orderstate.Result
}

// batch is a prepared batch: records mapped, claims and event records built.
type batch struct {
	msgs    []kafka.Message
	items   []item
	evs     []pending
	started time.Time
	// Set by claim: what to write, confirm and dead-letter.
	out      []kafka.Message
	outEvs   []*pending
	confirms []orderstate.Event
	dlq      []kafka.Message
	dlqItems []*item
}

// prepare maps every record of msgs, spread over the available cores, and builds each event's
// claim and Kafka record (as not stale; process re-encodes the rare stale one).
func (cs *Consumer) prepare(msgs []kafka.Message) *batch {
	b := &batch{msgs: msgs, items: make([]item, len(msgs)), started: time.Now()}
	workers := min(runtime.GOMAXPROCS(0), 1+len(msgs)/64)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(msgs); i += workers {
				it := &b.items[i]
				it.msg = msgs[i]
				it.res, it.err = cs.safeMap(it.msg.Value)
				it.platform = platformOf(it.res.Envelope.Platform, it.msg.Key)
				if it.err != nil || it.res.Skip != "" {
					continue
				}
				it.out = make([]kafka.Message, len(it.res.Events))
				it.outErr = make([]error, len(it.res.Events))
				for j, ev := range it.res.Events {
					it.out[j], it.outErr[j] = eventMessage(ev, traceparent(it))
				}
			}
		}()
	}
	wg.Wait()
	for i := range b.items {
		it := &b.items[i]
		for j, ev := range it.res.Events {
			if it.err != nil || it.res.Skip != "" {
				break
			}
			b.evs = append(b.evs, pending{it: it, ev: ev, msg: it.out[j], msgErr: it.outErr[j], claim: orderstate.Event{
				Key: schemas.Key(ev.Platform, ev.OrderID), EventID: ev.EventID, Kind: ev.Kind,
				OccurredMS: ev.OccurredAt.UnixMilli(), Terminal: ev.Terminal, Rank: schemas.StatusRank(ev.Kind, ev.Status),
			}})
		}
	}
	return b
}

// claim is stage 1 of a prepared batch: decide dedup and staleness for the whole batch in one
// pipelined round trip, and build the outputs in fetch order.
func (cs *Consumer) claim(ctx context.Context, b *batch) error {
	c := &cs.c
	items, evs := b.items, b.evs
	c.Metrics.BatchSize.Observe(float64(len(b.msgs)))
	for i := range items {
		it := &items[i]
		c.Metrics.Consumed.WithLabelValues(it.platform).Inc()
		if it.err == nil && it.res.Skip != "" {
			c.Metrics.Skipped.WithLabelValues(it.platform, it.res.Skip).Inc()
		}
	}
	// Forget the in-flight ids whose confirm completed before this claim is sent: Redis now
	// answers "duplicate" for them. Ids confirmed later stay in flight until the next batch.
	cs.mu.Lock()
	for _, id := range cs.confirmed {
		if cs.inflight[id]--; cs.inflight[id] <= 0 {
			delete(cs.inflight, id)
		}
	}
	cs.confirmed = cs.confirmed[:0]
	cs.mu.Unlock()
	if len(evs) > 0 {
		claims := make([]orderstate.Event, len(evs))
		for i := range evs {
			claims[i] = evs[i].claim
		}
		var results []orderstate.Result
		err := cs.retry(ctx, CheckRedis, "claim", func(ctx context.Context) error {
			var err error
			results, err = c.Store.Claim(ctx, claims)
			c.Metrics.RedisTrips.Inc()
			return err
		})
		if err != nil {
			return err
		}
		for i := range evs {
			evs[i].result = results[i]
		}
	}

	inBatch := make(map[string]bool, len(evs))
	cs.mu.Lock()
	for i := range evs {
		p := &evs[i]
		// An event that an earlier batch of this process is still writing is a duplicate too,
		// whatever Redis answered (a replay of the claim, or fresh if Redis lost the key
		// meanwhile): that batch will emit it, and commits follow batch order. Deciding it again
		// could give one event_id a second, different record.
		if p.result.Decision == orderstate.Duplicate || inBatch[p.ev.EventID] || cs.inflight[p.ev.EventID] > 0 {
			c.Metrics.Deduplicated.WithLabelValues(p.ev.Platform).Inc()
			continue
		}
		inBatch[p.ev.EventID] = true
		msg, err := p.msg, p.msgErr
		if p.result.Stale {
			p.ev.Stale = true
			msg, err = eventMessage(p.ev, traceparent(p.it))
		}
		if err != nil { // cannot happen for a well-formed event; treat as poison all the same
			p.it.err = &normalize.Error{Reason: schemas.DLQReasonValidate, Err: err}
			continue
		}
		cs.inflight[p.ev.EventID]++
		b.out = append(b.out, msg)
		b.outEvs = append(b.outEvs, p)
		b.confirms = append(b.confirms, p.claim)
	}
	cs.mu.Unlock()
	for i := range items {
		it := &items[i]
		if it.err == nil {
			continue
		}
		b.dlq = append(b.dlq, cs.deadLetter(it))
		b.dlqItems = append(b.dlqItems, it)
	}
	return nil
}

// emit is stage 2: write the events and dead letters; both must be acknowledged before anything
// is confirmed or committed. Batches are written one after the other, in fetch order.
func (cs *Consumer) emit(ctx context.Context, b *batch) error {
	c := &cs.c
	if err := cs.write(ctx, c.Status, "produce status events", b.out); err != nil {
		return err
	}
	if err := cs.write(ctx, c.DLQ, "produce dead letters", b.dlq); err != nil {
		return err
	}
	for _, p := range b.outEvs {
		c.Metrics.Emitted.WithLabelValues(p.ev.Platform, p.ev.Kind).Inc()
		if p.ev.Stale {
			c.Metrics.Guarded.WithLabelValues(p.ev.Platform, p.ev.Kind).Inc()
		}
	}
	for _, it := range b.dlqItems {
		reason := normalize.ReasonOf(it.err)
		c.Metrics.DeadLettered.WithLabelValues(it.platform, reason).Inc()
		c.Log.Warn("record dead-lettered", zap.String("platform", it.platform), zap.String("order_id", it.res.Envelope.OrderID),
			zap.String("topic", it.msg.Topic), zap.Int("partition", it.msg.Partition), zap.Int64("offset", it.msg.Offset),
			zap.String("reason", reason), zap.Error(it.err))
	}
	return nil
}

// finish is stage 3: confirm the claims (from now on a repeat is a duplicate), then commit the
// batch's offsets. A failed commit only means a replay, which dedup absorbs.
func (cs *Consumer) finish(ctx context.Context, b *batch) error {
	c := &cs.c
	if len(b.confirms) > 0 {
		err := cs.retry(ctx, CheckRedis, "confirm", func(ctx context.Context) error {
			c.Metrics.RedisTrips.Inc()
			return c.Store.Confirm(ctx, b.confirms)
		})
		if err != nil {
			return err
		}
	}
	// The claim stage forgets these ids before its next Redis call (see claim), not now: a claim
	// already on its way may have seen them still unconfirmed.
	cs.mu.Lock()
	for _, p := range b.outEvs {
		cs.confirmed = append(cs.confirmed, p.ev.EventID)
	}
	cs.mu.Unlock()
	committed, err := cs.commit(ctx, b.msgs)
	if err != nil {
		return err
	}
	if committed {
		c.Metrics.Committed.Add(float64(len(b.msgs)))
	}
	elapsed := time.Since(b.started).Seconds()
	for range b.msgs {
		c.Metrics.Latency.Observe(elapsed)
	}
	last := map[int]kafka.Message{}
	for _, m := range b.msgs {
		last[m.Partition] = m
	}
	for p, m := range last {
		c.Metrics.Lag.WithLabelValues(strconv.Itoa(p)).Set(float64(max(m.HighWaterMark-m.Offset-1, 0)))
	}
	return nil
}

func (cs *Consumer) safeMap(v []byte) (res normalize.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &normalize.Error{Reason: schemas.DLQReasonPanic, Err: fmt.Errorf("mapper panicked: %v", r)}
		}
	}()
	return cs.c.Map(v)
}

func (cs *Consumer) write(ctx context.Context, w Writer, what string, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	left := msgs
	return cs.retry(ctx, CheckKafka, what, func(ctx context.Context) error {
		err := w.WriteMessages(ctx, left...)
		var we kafka.WriteErrors
		if errors.As(err, &we) && len(we) == len(left) {
			var rest []kafka.Message
			for i, e := range we {
				if e != nil {
					rest = append(rest, left[i])
				}
			}
			left = rest
		}
		return err
	})
}

func (cs *Consumer) commit(ctx context.Context, batch []kafka.Message) (bool, error) {
	c := &cs.c
	var err error
	delay := c.BackoffMin
	for attempt := 0; attempt < c.CommitAttempts; attempt++ {
		if err = c.Reader.CommitMessages(ctx, batch...); err == nil {
			c.Ready.Set(CheckKafka, nil)
			return true, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		c.Metrics.Retries.WithLabelValues(CheckKafka).Inc()
		if !sleep(ctx, jitter(delay)) {
			return false, ctx.Err()
		}
		delay = min(delay*2, c.BackoffMax)
	}
	c.Log.Warn("commit failed, the batch will be replayed and deduplicated", zap.Int("records", len(batch)), zap.Error(err))
	return false, nil
}

// retry runs op until it succeeds or ctx ends, backing off between attempts and reporting the
// dependency's health.
func (cs *Consumer) retry(ctx context.Context, dep, what string, op func(context.Context) error) error {
	c := &cs.c
	delay := c.BackoffMin
	for {
		err := op(ctx)
		if err == nil {
			c.Ready.Set(dep, nil)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.Ready.Set(dep, fmt.Errorf("%s: %w", what, err))
		c.Metrics.Retries.WithLabelValues(dep).Inc()
		c.Log.Warn("dependency failed, backing off", zap.String("dependency", dep), zap.String("action", what), zap.Duration("delay", delay), zap.Error(err))
		if !sleep(ctx, jitter(delay)) {
			return ctx.Err()
		}
		delay = min(delay*2, c.BackoffMax)
	}
}

// jitter returns a delay in [d/2, d).
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// eventMessage builds the Kafka record of a unified event: keyed platform:order_id, JSON value,
// CloudEvents binary-mode headers, and the raw record's traceparent when it had one.
func eventMessage(ev schemas.StatusEvent, tp string) (kafka.Message, error) {
	v := appendEvent(make([]byte, 0, 768), &ev)
	h := []kafka.Header{
		{Key: schemas.HeaderCESpecVersion, Value: []byte(schemas.CESpecVersion)},
		{Key: schemas.HeaderCEID, Value: []byte(ev.EventID)},
		{Key: schemas.HeaderCEType, Value: []byte(schemas.CETypeStatus)},
		{Key: schemas.HeaderCESource, Value: []byte(schemas.CESourceNormalizer + ev.Platform)},
		{Key: schemas.HeaderCETime, Value: []byte(ev.OccurredAt.String())},
		{Key: schemas.HeaderContentType, Value: []byte("application/json")},
	}
	if tp != "" {
		h = append(h, kafka.Header{Key: schemas.HeaderTraceparent, Value: []byte(tp)})
	}
	return kafka.Message{Key: []byte(schemas.Key(ev.Platform, ev.OrderID)), Value: v, Headers: h}, nil
}

// traceparent is the raw record's traceparent header, else the one the ingress kept from the
// HTTP request in the envelope.
func traceparent(it *item) string {
	if tp := kafkaio.Header(it.msg, schemas.HeaderTraceparent); tp != "" {
		return tp
	}
	for k, v := range it.res.Envelope.Headers {
		if strings.EqualFold(k, schemas.HeaderTraceparent) {
			return v
		}
	}
	return ""
}

// deadLetter is the source record unchanged (key, value, headers) plus the dead-letter headers.
func (cs *Consumer) deadLetter(it *item) kafka.Message {
	return kafkaio.DeadLetter(it.msg, schemas.DLQServiceNormalizer, normalize.ReasonOf(it.err), it.err.Error(), cs.c.Now())
}

// platformOf returns a bounded platform label: the envelope's, else the key's prefix, when known.
func platformOf(envPlatform string, key []byte) string {
	for _, p := range []string{envPlatform, strings.SplitN(string(key), ":", 2)[0]} {
		if p == schemas.PlatformDianwoda || p == schemas.PlatformEleme {
			return p
		}
	}
	return "unknown"
}
