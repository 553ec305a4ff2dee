package consumer

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/normalizer/internal/normalize"
	"github.com/orderpipe/pipeline/normalizer/internal/orderstate"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/schemas"
)

// batches cuts the fetched records into batches (whatever is buffered, up to MaxBatch) and
// prepares each, until ctx ends.
func (cs *Consumer) batches(ctx context.Context, in <-chan kafka.Message, out chan<- *batch) {
	c := &cs.c
	last := 0 // the previous batch's size
	for {
		var first kafka.Message
		select {
		case <-ctx.Done():
			return
		case first = <-in:
		}
		// Sized for what is buffered now or the previous batch, not for MaxBatch: at a few
		// thousand records a second a batch holds a handful, and a slice of MaxBatch (2,000)
		// messages per batch was ~300 KB allocated and cleared each time, a twentieth of the
		// normalizer's CPU; under a backlog batches are full, and the previous one's size saves
		// growing the slice through every power of two.
		msgs := make([]kafka.Message, 1, min(c.MaxBatch, max(1+len(in), last)))
		msgs[0] = first
	drain:
		for len(msgs) < c.MaxBatch {
			select {
			case m := <-in:
				msgs = append(msgs, m)
			default:
				break drain
			}
		}
		last = len(msgs)
		b := cs.prepare(msgs)
		select {
		case out <- b:
			cs.progress.fetched(len(msgs))
		case <-ctx.Done():
			return
		}
	}
}

func (cs *Consumer) fetch(ctx context.Context, out chan<- kafka.Message) {
	c := &cs.c
	b := cs.policy.New()
	for {
		m, err := c.Reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			cs.failed(CheckKafka, "fetch", err)
			if retry.Sleep(ctx, b.Next()) != nil {
				return
			}
			continue
		}
		cs.progress.succeeded("fetch")
		b.Reset()
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
	err      error         // poison: the record goes to the DLQ
	out      kafka.Message // the event's record, encoded as not stale
	claim    orderstate.Event
	result   orderstate.Result
}

// hasEvent reports whether the record produced an event to claim and emit.
func (it *item) hasEvent() bool { return it.err == nil && it.res.Skip == "" }

// batch is a prepared batch: records mapped, claims and event records built.
type batch struct {
	msgs    []kafka.Message
	items   []item
	started time.Time
	// Set by claim: what to write, confirm and dead-letter.
	out      []kafka.Message
	outItems []*item
	confirms []orderstate.Event
	dlq      []kafka.Message
	dlqItems []*item
}

// prepare maps every record of msgs, spread over the available cores, and builds each event's
// claim and Kafka record (as not stale; claim re-encodes the rare stale one). An event larger
// than the status topic takes is poison here, before it is claimed, so that it never moves the
// order's guard.
func (cs *Consumer) prepare(msgs []kafka.Message) *batch {
	b := &batch{msgs: msgs, items: make([]item, len(msgs)), started: time.Now()}
	workers := min(runtime.GOMAXPROCS(0), 1+len(msgs)/64)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(msgs); i += workers {
				cs.prepareItem(&b.items[i], msgs[i])
			}
		}()
	}
	wg.Wait()
	return b
}

func (cs *Consumer) prepareItem(it *item, m kafka.Message) {
	it.msg = m
	it.res, it.err = cs.safeMap(m.Value)
	it.platform = platformOf(it.res.Envelope.Platform, m.Key)
	if !it.hasEvent() {
		return
	}
	ev := &it.res.Event
	it.out = eventMessage(ev, traceparent(it))
	if n := recordSize(it.out) + len(staleField); int64(n) > cs.c.MaxEventBytes {
		it.err = &normalize.Error{Reason: schemas.DLQReasonTooLarge,
			Err: fmt.Errorf("unified event of %d bytes exceeds the status topic's %d", n, cs.c.MaxEventBytes)}
		return
	}
	it.claim = orderstate.Event{Key: schemas.Key(ev.Platform, ev.OrderID), EventID: ev.EventID, Kind: ev.Kind,
		OccurredMS: ev.OccurredAt.UnixMilli(), Terminal: ev.Terminal, Rank: schemas.StatusRank(ev.Kind, ev.Status)}
}

func (cs *Consumer) safeMap(v []byte) (res normalize.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &normalize.Error{Reason: schemas.DLQReasonPanic, Err: fmt.Errorf("mapper panicked: %v", r)}
		}
	}()
	return cs.c.Map(v)
}
