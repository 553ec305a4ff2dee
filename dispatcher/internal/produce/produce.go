// Package produce writes records to Kafka for the dispatcher. Callers hand records over with
// Send, which never blocks, and a completion that runs exactly once: done(nil) once every
// record is durable (acks=all), or done(err) when the producer stopped first (a hard stop), in
// which case the records were never acknowledged and the dispatcher does not commit their
// source offsets: a crash or a stop replays, never loses.
//
// Each topic is written by its own lane (one goroutine, in hand-over order), so a topic that
// cannot be written (deleted, denied by an ACL) holds back only its own records: the others go
// on, and the failing lane reports itself unhealthy after FailAfter of uninterrupted failure.
// A failed write is retried with the plumbing's retry policy until it succeeds or the producer
// is stopped. After a partial failure (kafka.WriteErrors) the retry re-sends, for every key with
// a failed record, that record and every later record of the same key, in order: kafka-go may
// have split one partition's records into several batches and written a later one, and a retry
// of only the failed record would land the older event after the newer.
//
// Completions run on the lane's goroutine; they may call Send (it does not block). The queue of
// a lane is not bounded here: the dispatcher bounds what it hands over (MAX_IN_FLIGHT events).
package produce

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/dispatcher/internal/shutdown"
	"github.com/orderpipe/pipeline/plumbing/retry"
)

// Writer is what the producer needs of *kafkaio.Producer (or *kafka.Writer).
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

type req struct {
	msgs []kafka.Message
	done func(error)
}

// Producer writes records through per-topic lanes. Use New, then Run.
type Producer struct {
	w   Writer
	log *zap.Logger

	// Retry is the wait between failed writes; defaults 50 ms to 5 s.
	Retry retry.Policy
	// FailAfter is how long a topic's writes may fail without a success before Health reports
	// it; default 30 s.
	FailAfter time.Duration
	// OnError is called for every failed write attempt (metrics); may be nil.
	OnError func(topic string, err error)
	// Health is told when a topic starts failing persistently (err) and when it writes again
	// (nil); may be nil. The dispatcher turns it into readiness.
	Health func(topic string, err error)

	maxBatch int
	mu       sync.Mutex
	lanes    map[string]*lane
	stopped  bool
	wake     chan struct{}
}

// New returns a producer writing through w.
func New(w Writer, log *zap.Logger) *Producer {
	return &Producer{w: w, log: log, maxBatch: 1000, lanes: map[string]*lane{}, wake: make(chan struct{}, 1),
		Retry: retry.Policy{Min: 50 * time.Millisecond, Max: 5 * time.Second}, FailAfter: 30 * time.Second}
}

// Send hands msgs over. done (may be nil) runs exactly once: with nil once every record is
// durable, or with an error if the producer stops first. Send never blocks.
func (p *Producer) Send(msgs []kafka.Message, done func(error)) {
	if done == nil {
		done = func(error) {}
	}
	if len(msgs) == 0 {
		done(nil)
		return
	}
	byTopic := map[string][]kafka.Message{}
	var topics []string
	for _, m := range msgs {
		if _, ok := byTopic[m.Topic]; !ok {
			topics = append(topics, m.Topic)
		}
		byTopic[m.Topic] = append(byTopic[m.Topic], m)
	}
	done = fanIn(len(topics), done)
	for _, t := range topics {
		p.enqueue(t, req{msgs: byTopic[t], done: done})
	}
}

// fanIn returns a completion that calls done once, after n calls, with the first error.
func fanIn(n int, done func(error)) func(error) {
	if n == 1 {
		return done
	}
	var left atomic.Int32
	left.Store(int32(n))
	var mu sync.Mutex
	var first error
	return func(err error) {
		if err != nil {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		}
		if left.Add(-1) == 0 {
			mu.Lock()
			e := first
			mu.Unlock()
			done(e)
		}
	}
}

func (p *Producer) enqueue(topic string, r req) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		r.done(shutdown.ErrStopped)
		return
	}
	l := p.lanes[topic]
	if l == nil {
		l = &lane{topic: topic, signal: make(chan struct{}, 1)}
		p.lanes[topic] = l
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	l.push(r) // under p.mu: no push can follow the stop unnoticed
	p.mu.Unlock()
}

// Run writes until the hard stop; records handed over before it are written during the grace
// period. At the hard stop every record not yet durable completes with shutdown.ErrStopped.
func (p *Producer) Run(stop shutdown.Stop) error {
	var wg sync.WaitGroup
	started := map[*lane]bool{}
	for {
		p.mu.Lock()
		for _, l := range p.lanes {
			if !started[l] {
				started[l] = true
				wg.Go(func() { p.runLane(stop, l) })
			}
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-stop.Hard().Done():
			p.mu.Lock()
			p.stopped = true
			p.mu.Unlock()
			wg.Wait()
			// Lanes created after the last scan never ran: fail what they hold.
			p.mu.Lock()
			lanes := p.lanes
			p.mu.Unlock()
			for _, l := range lanes {
				l.failAll(shutdown.ErrStopped)
			}
			return nil
		}
	}
}

// lane is one topic's queue.
type lane struct {
	topic  string
	mu     sync.Mutex
	queue  []req
	signal chan struct{}
}

func (l *lane) push(r req) {
	l.mu.Lock()
	l.queue = append(l.queue, r)
	l.mu.Unlock()
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

// take removes up to about max records' worth of requests (at least one request).
func (l *lane) take(max int) []req {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, i := 0, 0
	for i < len(l.queue) && (i == 0 || n+len(l.queue[i].msgs) <= max) {
		n += len(l.queue[i].msgs)
		i++
	}
	out := l.queue[:i:i]
	l.queue = l.queue[i:]
	if len(l.queue) == 0 {
		l.queue = nil
	}
	return out
}

func (l *lane) failAll(err error) {
	for {
		batch := l.take(1 << 30)
		if len(batch) == 0 {
			return
		}
		for _, r := range batch {
			r.done(err)
		}
	}
}

func (p *Producer) runLane(stop shutdown.Stop, l *lane) {
	hard := stop.Hard()
	for {
		batch := l.take(p.maxBatch)
		if len(batch) == 0 {
			select {
			case <-l.signal:
				continue
			case <-hard.Done():
				l.failAll(shutdown.ErrStopped)
				return
			}
		}
		var msgs []kafka.Message
		for _, r := range batch {
			msgs = append(msgs, r.msgs...)
		}
		err := p.write(hard, l.topic, msgs)
		for _, r := range batch {
			r.done(err)
		}
		if err != nil {
			l.failAll(err)
			return
		}
	}
}

// write writes msgs until they are durable or ctx ends (then it returns shutdown.ErrStopped).
func (p *Producer) write(ctx context.Context, topic string, msgs []kafka.Message) error {
	b := p.Retry.New()
	var failingSince time.Time
	reported := false
	for {
		err := p.w.WriteMessages(ctx, msgs...)
		if err == nil {
			if reported && p.Health != nil {
				p.Health(topic, nil)
			}
			return nil
		}
		if ctx.Err() != nil {
			return shutdown.ErrStopped
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		if p.OnError != nil {
			p.OnError(topic, err)
		}
		if !reported && time.Since(failingSince) >= p.FailAfter && p.Health != nil {
			reported = true
			p.Health(topic, err)
		}
		p.log.Warn("kafka write failed, retrying", zap.String("topic", topic), zap.Int("records", len(msgs)), zap.Error(err))
		msgs = unwritten(msgs, err)
		if len(msgs) == 0 {
			return nil
		}
		if retry.Sleep(ctx, b.Next()) != nil {
			return shutdown.ErrStopped
		}
	}
}

// unwritten returns what must be written again after err, in order: everything when err does not
// say which records failed; otherwise, for every key with a failed record, that record and every
// later record of the same key (records of one key share a partition, whose order must hold).
func unwritten(msgs []kafka.Message, err error) []kafka.Message {
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(msgs) {
		return msgs
	}
	failedKeys := map[string]bool{}
	var out []kafka.Message
	for i, m := range msgs {
		k := string(m.Key)
		if werrs[i] != nil || failedKeys[k] {
			failedKeys[k] = true
			out = append(out, m)
		}
	}
	return out
}
