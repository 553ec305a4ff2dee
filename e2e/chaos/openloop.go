package chaos

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxInFlight is DriveOpen's default cap on requests in flight.
const DefaultMaxInFlight = 8192

// DriveOpen is Drive as an open-loop generator, the way platforms load the ingress: a pacer
// emits due times at exactly c.Rate per second for c.Duration, and every due time is sent at
// once in a goroutine of its own, whatever the replies before it are doing. A slow pipeline
// therefore meets more requests in flight, not fewer requests, and each success reply's latency
// is measured from its due time (no coordinated omission).
//
// Per-order order is kept as a platform keeps it: an order's next callback is sent only after
// the previous one was acknowledged. A due time takes the next step of a live order that has
// nothing in flight, or starts a new order when none is free. A callback that is not
// acknowledged (non-2xx, network error) is retried by its goroutine with the platform's
// backoff, unpaced, until acknowledged or c.Drain after the load ends. When the pacer stops,
// the live orders finish their flows, unpaced (their replies' latency runs from when they were
// sent).
//
// At most c.MaxInFlight (default DefaultMaxInFlight) paced requests are in flight; a due time
// that has to wait for that cap is counted in Ledger.Late (its latency still runs from its due
// time). c.Workers is ignored. The ledger is the same as Drive's, so Settle and Check apply.
func DriveOpen(ctx context.Context, c Config) *Ledger {
	if c.Drain <= 0 {
		c.Drain = 90 * time.Second
	}
	if c.Rate <= 0 {
		c.Rate = 100
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.RunID == "" {
		c.RunID = strconv.FormatInt(time.Now().UnixNano()/1e6%1e7, 10)
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if len(c.IngressURLs) == 0 {
		c.IngressURLs = []string{c.IngressURL}
	}
	l := newLedger()
	// A connection for every request in flight, kept alive between them, so that a request never
	// waits for one at thousands per second with tens of milliseconds per reply.
	client := newClient(c.MaxInFlight)
	defer client.CloseIdleConnections()
	drainCtx, stopDrain := context.WithTimeout(ctx, c.Duration+c.Drain)
	defer stopDrain()

	o := &openLoop{l: l, sem: make(chan struct{}, c.MaxInFlight), jobs: make(chan func())}
	defer close(o.jobs) // after o.wg.Wait below: the sender goroutines end
	// The pacer's worker plans orders and the per-tick faults; only the pacer goroutine uses it.
	var seq atomic.Int64
	planner := &worker{c: &c, l: l, client: client, rng: rand.New(rand.NewPCG(c.Seed, 0)), seq: &seq, drain: drainCtx}
	sender := func() *worker { return &worker{c: &c, l: l, client: client, seq: &seq, drain: drainCtx} }

	l.Started = time.Now()
	interval := time.Duration(float64(time.Second) / c.Rate)
	end := l.Started.Add(c.Duration)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
pace:
	for n := int64(0); ; n++ {
		// Due times are computed from the start, so a late wake-up does not shift the ones after
		// it: the pacer catches up, sending what is already due at once.
		due := l.Started.Add(time.Duration(n) * interval)
		if !due.Before(end) || ctx.Err() != nil {
			break
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break pace
			case <-timer.C:
			}
		}
		l.Offered.Add(1)
		select {
		case o.sem <- struct{}{}:
		default:
			l.Late.Add(1)
			select {
			case o.sem <- struct{}{}:
			case <-ctx.Done():
				break pace
			}
		}
		o.dispatch(planner, sender(), due)
	}
	o.finish(sender)
	o.wg.Wait()
	l.Finished = time.Now()
	return l
}

// openLoop is DriveOpen's bookkeeping of live orders.
type openLoop struct {
	l   *Ledger
	sem chan struct{}
	wg  sync.WaitGroup
	// jobs hands a send to an idle sender goroutine (see run).
	jobs chan func()

	mu    sync.Mutex
	ready []*liveOrder // live orders with nothing in flight, oldest first
	over  bool         // the pacer has stopped: acknowledged orders go on at once
}

// dispatch sends one paced callback due at due in a goroutine of its own (holding a slot of
// o.sem): the next step of the oldest free live order, a new order's first step, or a fault.
func (o *openLoop) dispatch(planner, s *worker, due time.Time) {
	m := planner.c.Mix
	var send func()
	switch x := planner.rng.Float64(); {
	case x < m.Forged:
		path, body := planner.planForged()
		send = func() { s.postFault(path, body, &o.l.Forged, &o.l.ForgedAccepted) }
	case x < m.Forged+m.Malformed:
		path, body := planner.planMalformed()
		send = func() { s.postFault(path, body, &o.l.Malformed, &o.l.MalformedOK) }
	case x < m.Forged+m.Malformed+m.Poison:
		e := planner.poison()
		send = func() { s.send(e, due, true) }
	}
	if send != nil {
		o.run(func() {
			defer func() { <-o.sem }()
			send()
		})
		return
	}
	o.mu.Lock()
	var lo *liveOrder
	if len(o.ready) > 0 {
		lo = o.ready[0]
		o.ready[0] = nil
		o.ready = o.ready[1:]
	}
	o.mu.Unlock()
	if lo == nil {
		lo = planner.newOrder()
	}
	o.run(func() {
		ok := s.send(lo.entries[lo.next], due, true)
		<-o.sem
		if ok {
			o.acked(s, lo)
		}
	})
}

// run runs f at once on an idle sender goroutine, or on a new one when none is idle; o.wg
// counts f until it returns. The goroutines live until DriveOpen returns, so a request does
// not start a goroutine whose stack then grows again through the HTTP client: per-request
// goroutines spent 8% of the generator's CPU at 4,000/s copying stacks (runtime.newstack,
// measured with net/http's client, before fasthttp's).
func (o *openLoop) run(f func()) {
	o.wg.Add(1)
	job := func() {
		defer o.wg.Done()
		f()
	}
	select {
	case o.jobs <- job:
	default:
		go func() {
			job()
			for job := range o.jobs {
				job()
			}
		}()
	}
}

// acked advances lo after its step was acknowledged: back to the free orders while the pacer
// runs; walked on at once, unpaced, in this goroutine once it has stopped.
func (o *openLoop) acked(s *worker, lo *liveOrder) {
	for {
		lo.next++
		if lo.next >= len(lo.entries) {
			return
		}
		o.mu.Lock()
		over := o.over
		if !over {
			o.ready = append(o.ready, lo)
		}
		o.mu.Unlock()
		if !over {
			return
		}
		if !s.send(lo.entries[lo.next], time.Now(), false) {
			return
		}
	}
}

// finish stops pacing: the free live orders finish their flows at once, each in a goroutine.
func (o *openLoop) finish(sender func() *worker) {
	o.mu.Lock()
	o.over = true
	ready := o.ready
	o.ready = nil
	o.mu.Unlock()
	for _, lo := range ready {
		o.run(func() {
			s := sender()
			if s.send(lo.entries[lo.next], time.Now(), false) {
				o.acked(s, lo)
			}
		})
	}
}
