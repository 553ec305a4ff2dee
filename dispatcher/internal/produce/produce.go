// Package produce writes records to Kafka for the dispatcher: callers hand over records with a
// callback, and the producer calls it once the records are durable (acks=all). Writes are made by
// one goroutine, in the order they were handed over, so records of one key keep their order; a
// failed write is retried (only the records that failed) with capped backoff until it succeeds or
// the producer is stopped. A record whose callback never ran was never acknowledged, so the
// dispatcher never commits its source offset: a crash replays, never loses.
package produce

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Writer is what the producer needs of *kafka.Writer.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

type req struct {
	msgs []kafka.Message
	done func()
}

// Producer batches and writes records. Use New, then Run.
type Producer struct {
	w        Writer
	log      *zap.Logger
	in       chan req
	maxBatch int
	// OnError is called for every failed write attempt (metrics, readiness); may be nil.
	OnError func(error)
	// OnSuccess is called after each successful write; may be nil.
	OnSuccess func()
}

// New returns a producer writing through w.
func New(w Writer, log *zap.Logger) *Producer {
	return &Producer{w: w, log: log, in: make(chan req, 4096), maxBatch: 1000}
}

// Send hands msgs over; done runs once all are durable. It blocks while the queue is full and
// returns ctx's error if ctx ends first (done will then never run).
func (p *Producer) Send(ctx context.Context, msgs []kafka.Message, done func()) error {
	select {
	case p.in <- req{msgs: msgs, done: done}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run writes until ctx ends.
func (p *Producer) Run(ctx context.Context) error {
	var batch []req
	for {
		batch = batch[:0]
		select {
		case r := <-p.in:
			batch = append(batch, r)
		case <-ctx.Done():
			return nil
		}
		n := len(batch[0].msgs)
	fill:
		for n < p.maxBatch {
			select {
			case r := <-p.in:
				batch = append(batch, r)
				n += len(r.msgs)
			default:
				break fill
			}
		}
		msgs := make([]kafka.Message, 0, n)
		for _, r := range batch {
			msgs = append(msgs, r.msgs...)
		}
		if err := p.write(ctx, msgs); err != nil {
			return nil // stopped before the write was acknowledged: no callback runs
		}
		for _, r := range batch {
			if r.done != nil {
				r.done()
			}
		}
	}
}

func (p *Producer) write(ctx context.Context, msgs []kafka.Message) error {
	backoff := 50 * time.Millisecond
	for {
		err := p.w.WriteMessages(ctx, msgs...)
		if err == nil {
			if p.OnSuccess != nil {
				p.OnSuccess()
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p.OnError != nil {
			p.OnError(err)
		}
		p.log.Warn("kafka write failed, retrying", zap.Int("records", len(msgs)), zap.Error(err))
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(msgs) {
			var failed []kafka.Message
			for i, e := range werrs {
				if e != nil {
					failed = append(failed, msgs[i])
				}
			}
			msgs = failed
			if len(msgs) == 0 {
				return nil
			}
		}
		d := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
