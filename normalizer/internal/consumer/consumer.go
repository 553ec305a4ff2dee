// Package consumer is the normalizer's loop: it fetches raw callback records in batches, maps
// them (package normalize), decides dedup and staleness for the whole batch in one pipelined
// Redis round trip (package orderstate), writes the unified events and the dead letters to
// Kafka, confirms the dedup claims, and only then commits the batch's offsets.
//
// Guarantees: at-least-once. A record's offset is committed only after everything it produced is
// acknowledged by Kafka (acks=all), so a crash or a stop replays and never skips; the replay is
// absorbed by dedup, and an event replayed before its claim was confirmed is emitted again with
// the same event_id and the same stale flag. Per-order order holds because records and events
// of one order share a key and so a partition, a batch is written in fetch order, and a partial
// write failure re-sends everything of a key from its first failure on. Poison records
// (undecodable, invalid, a mapper panic, or an output larger than its topic takes) go to the
// dead-letter topic and the loop goes on; Kafka or Redis failures are retried with the pipeline's
// one backoff policy (plumbing/retry) while readiness reports them, and nothing past them is
// committed. On stop, the batches in flight are finished (written, confirmed, committed) within
// DrainTimeout.
package consumer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/normalizer/internal/normalize"
	"github.com/orderpipe/pipeline/normalizer/internal/orderstate"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/schemas"
)

// Readiness names. The loop reports CheckLoop (its own calls and its progress); CheckKafka and
// CheckRedis are the dependency pings of main, which never overwrite the loop's state.
const (
	CheckKafka = "kafka"
	CheckRedis = "redis"
	CheckLoop  = "consumer"
)

// Reader is the part of *kafkaio.FetchReader (or *kafka.Reader) the loop uses.
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

// Readiness receives health (ops.Readiness).
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
	// Map turns a record value into an event; default normalize.Record. Tests inject panics here.
	Map func(value []byte) (normalize.Result, error)
	// MaxBatch is the most records processed together; default 1000.
	MaxBatch int
	// BackoffMin and BackoffMax bound the retry delay after a Kafka or Redis failure (the
	// plumbing/retry policy: doubling from min to max, jittered); defaults 100 ms and 5 s.
	BackoffMin, BackoffMax time.Duration
	// CommitAttempts bounds commit retries; an offset left uncommitted only causes a harmless
	// replay. Default 5.
	CommitAttempts int
	// CommitInterval is the least time between two offset commits; default
	// DefaultCommitInterval. Finished batches wait for the next commit, not the work: the
	// stages before it go on, and one commit covers every batch that finished meanwhile. An
	// offset commit costs the broker a write to __consumer_offsets, so committing every batch at
	// a few hundred batches a second was a tenth of the broker's requests (docs/performance-history.md).
	// A crash replays at most this much more, which dedup absorbs.
	CommitInterval time.Duration
	// MaxEventBytes and MaxDeadLetterBytes are the largest record the status and dead-letter
	// writers take (their BatchBytes): a larger one would be refused for the whole produce call
	// forever. Defaults: the writer's BatchBytes when it is a *kafka.Writer, else
	// kafkaio.DefaultBatchBytes.
	MaxEventBytes, MaxDeadLetterBytes int64
	// DrainTimeout bounds how long a stop waits for the batches in flight to be written,
	// confirmed and committed; default 20 s (keep it below the pod's termination grace).
	DrainTimeout time.Duration
	// StallTimeout: the loop is not ready when it has records in flight and has not finished a
	// batch for this long; default 2 min. (A member that fetches nothing while its partitions
	// lag is seen from the broker's side: the OrderpipeConsumerStuck alert. The group's lag is
	// not this member's work, so it does not count here: an idle member of a group catching up
	// elsewhere is healthy.)
	StallTimeout time.Duration
	// Now is the clock for dlq_time and progress; default time.Now.
	Now func() time.Time
}

// DefaultCommitInterval is Config.CommitInterval's default.
const DefaultCommitInterval = 100 * time.Millisecond

// Consumer runs the loop.
type Consumer struct {
	c        Config
	policy   retry.Policy
	inflight *inflight
	progress *progress
}

// New returns a Consumer after checking the wiring.
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
	if c.CommitAttempts <= 0 {
		c.CommitAttempts = 5
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = batchBytes(c.Status)
	}
	if c.MaxDeadLetterBytes <= 0 {
		c.MaxDeadLetterBytes = batchBytes(c.DLQ)
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 20 * time.Second
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 2 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Ready == nil {
		c.Ready = nopReady{}
	}
	cs := &Consumer{c: c, policy: retry.Policy{Min: c.BackoffMin, Max: c.BackoffMax}}
	cs.progress = newProgress(c.Now, c.StallTimeout)
	return cs, nil
}

// batchBytes is w's BatchBytes when w is a kafka-go writer.
func batchBytes(w Writer) int64 {
	if kw, ok := w.(*kafka.Writer); ok && kw.BatchBytes > 0 {
		return kw.BatchBytes
	}
	return kafkaio.DefaultBatchBytes
}

type nopReady struct{}

func (nopReady) Set(string, error) {}

// Run fetches until ctx ends, then drains: the batches already cut are finished (written,
// confirmed, committed) within DrainTimeout, and Run returns nil. A record's offset is committed
// only after its output is durable, so a stop at any point replays, never skips; dedup makes a
// replay harmless.
//
// The loop is a pipeline (runStages), each stage handling one batch at a time, in fetch order:
// fetch (kafkaio.FetchReader) → prepare (decode and map, parallel, CPU only) → claim (Redis) →
// emit (Kafka) → finish (Redis confirm) → commit (every finished batch waiting, in one offset
// commit, at most once per CommitInterval). So the claim of batch N+1, the writes of batch N and the confirm of batch N-1 overlap
// with the commit of the batches before, while each kind of call stays strictly ordered:
// guard decisions follow fetch order, writes follow fetch order (per-order order holds), and a
// batch is committed only after its own writes were acknowledged and its claims confirmed, and
// after every earlier batch was committed.
func (cs *Consumer) Run(ctx context.Context) error {
	c := &cs.c
	// The bookkeeping belongs to one run: a batch claimed but never emitted by an earlier,
	// cancelled run must not make this run drop its replay, nor count as in flight.
	cs.inflight = newInflight()
	cs.progress = newProgress(c.Now, c.StallTimeout)
	// work outlives ctx by DrainTimeout at most, so that a stop finishes the batches in flight.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	drainCut := make(chan struct{})
	go func() {
		select {
		case <-work.Done():
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(c.DrainTimeout)
		defer t.Stop()
		select {
		case <-work.Done():
		case <-t.C:
			close(drainCut)
			cancelWork()
		}
	}()
	// Fetching and batching stop as soon as ctx ends (or the work fails).
	fetching, stopFetching := context.WithCancel(ctx)
	defer stopFetching()
	stopOnWorkEnd := context.AfterFunc(work, stopFetching)
	defer stopOnWorkEnd()

	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		cs.report(work)
	}()
	msgs := make(chan kafka.Message, c.MaxBatch)
	prepared := make(chan *batch, 1)
	go func() {
		defer wg.Done()
		cs.fetch(fetching, msgs)
	}()
	go func() {
		defer wg.Done()
		defer close(prepared)
		cs.batches(fetching, msgs, prepared)
	}()
	err := runStages(work, cancelWork, prepared, one(cs.claim), one(cs.emit), one(cs.finish), groupedEvery(cs.commitAll, c.CommitInterval))
	cancelWork()
	wg.Wait()
	select {
	case <-drainCut:
		c.Log.Warn("drain cut short: batches in flight are left for a replay", zap.Duration("drain_timeout", c.DrainTimeout))
	default:
	}
	if ctx.Err() != nil {
		return nil // a clean stop
	}
	return err
}

// report sets the loop's readiness from its progress, every second or so, until work ends.
func (cs *Consumer) report(work context.Context) {
	every := max(min(time.Second, cs.c.StallTimeout/4), 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cs.c.Ready.Set(CheckLoop, cs.progress.err())
		select {
		case <-work.Done():
			return
		case <-t.C:
		}
	}
}

// claim is stage 1 of a prepared batch: decide dedup and staleness for the whole batch in one
// pipelined round trip, and build the outputs in fetch order.
func (cs *Consumer) claim(ctx context.Context, b *batch) error {
	c := &cs.c
	c.Metrics.BatchSize.Observe(float64(len(b.msgs)))
	// Sized for the whole batch up front: growing these was a tenth of the bytes allocated per
	// record.
	claims := make([]orderstate.Event, 0, len(b.items))
	claimed := make([]*item, 0, len(b.items))
	b.out = make([]kafka.Message, 0, len(b.items))
	b.outItems = make([]*item, 0, len(b.items))
	b.confirms = make([]orderstate.Event, 0, len(b.items))
	for i := range b.items {
		it := &b.items[i]
		c.Metrics.Consumed.WithLabelValues(it.platform).Inc()
		if it.err == nil && it.res.Skip != "" {
			c.Metrics.Skipped.WithLabelValues(it.platform, it.res.Skip).Inc()
		}
		if it.hasEvent() {
			claims = append(claims, it.claim)
			claimed = append(claimed, it)
		}
	}
	// Ids confirmed before this claim is sent are duplicates for Redis from now on.
	cs.inflight.settle()
	if len(claims) > 0 {
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
		for i, it := range claimed {
			it.result = results[i]
		}
	}
	for _, it := range claimed {
		// An event that an earlier batch of this process (or of this batch) is still writing is
		// a duplicate too, whatever Redis answered (see inflight).
		if it.result.Decision == orderstate.Duplicate || !cs.inflight.take(it.res.Event.EventID) {
			c.Metrics.Deduplicated.WithLabelValues(it.res.Event.Platform).Inc()
			continue
		}
		msg := it.out
		if it.result.Stale {
			it.res.Event.Stale = true
			msg = eventMessage(&it.res.Event, traceparent(it))
		}
		b.out = append(b.out, msg)
		b.outItems = append(b.outItems, it)
		b.confirms = append(b.confirms, it.claim)
	}
	for i := range b.items {
		if it := &b.items[i]; it.err != nil {
			b.dlq = append(b.dlq, cs.deadLetter(it))
			b.dlqItems = append(b.dlqItems, it)
		}
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
	for _, it := range b.outItems {
		ev := &it.res.Event
		c.Metrics.Emitted.WithLabelValues(ev.Platform, ev.Kind).Inc()
		if ev.Stale {
			c.Metrics.Guarded.WithLabelValues(ev.Platform, ev.Kind).Inc()
		}
	}
	for i, it := range b.dlqItems {
		reason := kafkaio.Header(b.dlq[i], schemas.HeaderDLQReason)
		c.Metrics.DeadLettered.WithLabelValues(it.platform, reason).Inc()
		c.Log.Warn("record dead-lettered", zap.String("platform", it.platform), zap.String("order_id", it.res.Envelope.OrderID),
			zap.String("topic", it.msg.Topic), zap.Int("partition", it.msg.Partition), zap.Int64("offset", it.msg.Offset),
			zap.String("reason", reason), zap.Error(it.err))
	}
	return nil
}

// finish is stage 3: confirm the claims (from now on a repeat is a duplicate); commitAll then
// commits the batch's offsets. A failed commit only means a replay, which dedup absorbs.
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
	ids := make([]string, len(b.outItems))
	for i, it := range b.outItems {
		ids[i] = it.res.Event.EventID
	}
	cs.inflight.confirm(ids...)
	return nil
}

// commitAll is the last stage, handed every finished batch waiting at once: one offset commit
// (the last record of each partition) covers them all, so a commit's round trip to the group
// coordinator (milliseconds: it is a write to __consumer_offsets) never paces the batches.
func (cs *Consumer) commitAll(ctx context.Context, bs []*batch) error {
	c := &cs.c
	last := map[int]kafka.Message{}
	n := 0
	for _, b := range bs {
		n += len(b.msgs)
		for _, m := range b.msgs {
			if l, ok := last[m.Partition]; !ok || m.Offset > l.Offset {
				last[m.Partition] = m
			}
		}
	}
	msgs := make([]kafka.Message, 0, len(last))
	for _, m := range last {
		msgs = append(msgs, m)
	}
	committed, err := cs.commit(ctx, msgs)
	if err != nil {
		return err
	}
	if committed {
		c.Metrics.Committed.Add(float64(n))
	}
	cs.progress.finished(n)
	for _, b := range bs {
		elapsed := time.Since(b.started).Seconds()
		for range b.msgs {
			c.Metrics.Latency.Observe(elapsed)
		}
	}
	return nil
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

// platformOf returns a bounded platform label: the envelope's, else the key's prefix, when known.
func platformOf(envPlatform string, key []byte) string {
	for _, p := range []string{envPlatform, strings.SplitN(string(key), ":", 2)[0]} {
		if p == schemas.PlatformDianwoda || p == schemas.PlatformEleme {
			return p
		}
	}
	return "unknown"
}
