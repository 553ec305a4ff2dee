package writeback

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/dispatcher/internal/dangdang"
	"github.com/orderpipe/pipeline/dispatcher/internal/routing"
	"github.com/orderpipe/pipeline/dispatcher/internal/shutdown"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/schemas"
)

// shop is one shop's loop: a single goroutine owns its queue and its state (paused by 176,
// backing off after a rate limit); calls run on their own goroutines and send back a callResult.
type shop struct {
	s     *Sink
	name  string
	cfg   *routing.Shop
	cred  dangdang.Credentials
	in    chan Item
	calls chan callResult
	timer *time.Timer

	q            queue
	active       int
	paused       bool
	limitedUntil time.Time
	limitBackoff *retry.Backoff

	parkMu     sync.Mutex
	parkIDs    []string
	parkSignal chan struct{}
}

func newShop(s *Sink, name string, cfg *routing.Shop) *shop {
	return &shop{
		s: s, name: name, cfg: cfg,
		cred:         dangdang.Credentials{AppKey: cfg.AppKey, AppSecret: cfg.AppSecret, Session: cfg.Session},
		in:           make(chan Item, 1024),
		calls:        make(chan callResult, cfg.Concurrency+1),
		q:            newQueue(),
		limitBackoff: s.rateLimitPolicy().New(),
		parkSignal:   make(chan struct{}, 1),
	}
}

func (sh *shop) requestPark(id string) {
	sh.parkMu.Lock()
	sh.parkIDs = append(sh.parkIDs, id)
	sh.parkMu.Unlock()
	select {
	case sh.parkSignal <- struct{}{}:
	default:
	}
}

// run serves the shop until it is drained after the soft stop, or until the hard stop.
func (sh *shop) run(stop shutdown.Stop) {
	s := sh.s
	sh.timer = time.NewTimer(time.Hour)
	sh.timer.Stop()
	defer sh.timer.Stop()
	tick := time.NewTicker(s.cfg.PauseProbe)
	defer tick.Stop()
	soft, hard := stop.Soft(), stop.Hard().Done()
	draining := false
	var wg sync.WaitGroup
	defer wg.Wait()
	start := func(ids []string, reason string) {
		batch := sh.q.take(ids)
		sh.active++
		s.m.Flushes.WithLabelValues(reason).Inc()
		wg.Go(func() { sh.calls <- sh.call(stop.Hard(), batch) })
	}
	for {
		if draining && sh.active == 0 && (len(sh.q.pend) == 0 || sh.paused) {
			sh.abandon("dangdang shop paused at shutdown, events left for replay")
			return
		}
		select {
		case it := <-sh.in:
			sh.receive(it)
		case <-sh.timer.C:
		case r := <-sh.calls:
			sh.active--
			sh.settle(r)
		case <-tick.C:
			sh.parkWaitedSince(s.now().Add(-s.cfg.ParkAfter))
			if sh.paused && sh.active == 0 {
				if ids, _, _ := sh.q.eligible(s.now(), s.cfg.BatchSize); len(ids) > 0 {
					start(ids, "probe")
				}
			}
		case <-sh.parkSignal:
			sh.parkRequested()
		case <-soft:
			draining, soft = true, nil
		case <-hard:
			for ; sh.active > 0; sh.active-- {
				sh.settle(<-sh.calls)
			}
			sh.abandon("")
			return
		}
		sh.flush(draining, start)
	}
}

// receive adds an item and whatever else is queued already, so batches fill before deciding.
func (sh *shop) receive(it Item) {
	now := sh.s.now()
	sh.add(it, now)
	for range 4096 {
		select {
		case it := <-sh.in:
			sh.add(it, now)
		default:
			return
		}
	}
}

func (sh *shop) add(it Item, now time.Time) {
	if it.Stale {
		o := &order{id: it.OrderID, status: it.DistriStatus, items: []Item{it}}
		sh.s.m.Skipped.WithLabelValues(SkipStale).Inc()
		sh.finish(o, Result{Outcome: OutcomeSkipped, Reason: SkipStale}, "", "")
		return
	}
	sh.q.add(it, now)
}

// flush starts calls while a slot is free: full batches always; a partial one when the window
// of its oldest order has ended, or when draining. Nothing starts while the shop is paused or
// backing off after a rate limit; otherwise the timer is set for the next moment to look again.
func (sh *shop) flush(draining bool, start func(ids []string, reason string)) {
	cfg := sh.s.cfg
	if sh.paused {
		return // only the probe calls
	}
	now := sh.s.now()
	if now.Before(sh.limitedUntil) {
		sh.timer.Reset(sh.limitedUntil.Sub(now))
		return
	}
	for sh.active < sh.cfg.Concurrency {
		ids, oldest, retryAt := sh.q.eligible(now, cfg.BatchSize)
		windowEnd := oldest.Add(cfg.Window)
		switch {
		case len(ids) >= cfg.BatchSize:
			start(ids, "size")
		case len(ids) > 0 && draining:
			start(ids, "shutdown")
		case len(ids) > 0 && !now.Before(windowEnd):
			start(ids, "window")
		default:
			next := retryAt
			if len(ids) > 0 && (next.IsZero() || windowEnd.Before(next)) {
				next = windowEnd
			}
			if !next.IsZero() {
				sh.timer.Reset(next.Sub(now))
			}
			return
		}
	}
	// No free slot: the next call's result triggers the next flush.
}

// settle takes a call's result back into the queue and the shop's state.
func (sh *shop) settle(r callResult) {
	now := sh.s.now()
	sh.q.returned(r.batch)
	sh.retry(r.retry, r.reason, r.backoff, now)
	sh.q.requeue(r.requeue)
	switch {
	case r.expired && !sh.paused:
		sh.paused = true
		sh.s.m.Paused.WithLabelValues(sh.name).Set(1)
		sh.s.log.Error("dangdang subscription expired, shop paused", zap.String("shop", sh.name), zap.Int("orders", len(sh.q.pend)))
	case r.answered && sh.paused:
		sh.paused = false
		sh.s.m.Paused.WithLabelValues(sh.name).Set(0)
		sh.s.log.Info("dangdang shop resumed", zap.String("shop", sh.name))
	}
	switch {
	case r.rateLimited:
		wait := max(sh.s.cfg.RateLimitBackoff, sh.limitBackoff.Next())
		sh.limitedUntil = now.Add(wait)
		sh.s.log.Warn("dangdang rate limited, shop backing off", zap.String("shop", sh.name), zap.Duration("wait", wait))
	case r.answered:
		sh.limitBackoff.Reset()
	}
}

// retry schedules orders that failed transiently, or dead-letters those out of attempts. Orders
// of one call share one backoff sequence, so they are retried together.
func (sh *shop) retry(os []*order, reason string, b *retry.Backoff, now time.Time) {
	var again []*order
	for _, o := range os {
		o.attempts++
		if o.attempts >= sh.s.cfg.MaxAttempts {
			sh.s.m.DeadLettered.Inc()
			why := fmt.Sprintf("retries exhausted after %d attempts: %s", o.attempts, reason)
			sh.finish(o, Result{Outcome: OutcomeDeadLettered, Reason: why}, DLQRetriesExhausted, why)
			continue
		}
		again = append(again, o)
	}
	if len(again) == 0 {
		return
	}
	if b == nil {
		b = sh.s.retryPolicy().New()
	}
	at := now.Add(b.Next())
	for _, o := range again {
		o.backoff, o.notBefore = b, at
	}
	sh.s.m.Retries.WithLabelValues(sh.name, reason).Add(float64(len(again)))
	sh.q.requeue(again)
}

func (sh *shop) parkWaitedSince(t time.Time) {
	for _, id := range sh.q.waitedSince(t) {
		sh.park(id, fmt.Sprintf("waited longer than %s", sh.s.cfg.ParkAfter))
	}
}

func (sh *shop) parkRequested() {
	sh.parkMu.Lock()
	ids := sh.parkIDs
	sh.parkIDs = nil
	sh.parkMu.Unlock()
	for _, id := range ids {
		sh.park(id, "its input partition reached the tracked-span bound")
	}
}

// park dead-letters a waiting order with the replayable reason dangdang_parked, only while the
// shop is stuck (paused by 176, or backing off after a rate limit): a healthy shop's backlog
// (catch-up) is held by backpressure instead, never parked.
func (sh *shop) park(id, why string) {
	switch {
	case sh.paused:
		why += " while the shop was paused (176)"
	case sh.s.now().Before(sh.limitedUntil):
		why += " while the shop was rate limited"
	default:
		return
	}
	o := sh.q.remove(id)
	if o == nil {
		return
	}
	sh.s.m.Parked.WithLabelValues(sh.name).Inc()
	sh.s.log.Warn("dangdang order parked", zap.String("shop", sh.name), zap.String("order_id", id), zap.String("reason", why))
	sh.finish(o, Result{Outcome: OutcomeDeadLettered, Reason: "parked: " + why}, DLQParked, why)
}

// abandon completes every waiting item with shutdown.ErrStopped: they are replayed.
func (sh *shop) abandon(msg string) {
	os := sh.q.drainAll()
	if msg != "" && len(os) > 0 {
		sh.s.log.Warn(msg, zap.String("shop", sh.name), zap.Int("orders", len(os)))
	}
	for _, o := range os {
		for _, it := range o.items {
			it.Done(Outcome{Err: shutdown.ErrStopped})
		}
	}
}

// finish hands an order's final outcome to the report function.
func (sh *shop) finish(o *order, r Result, dlqReason, detail string) {
	latest := o.latest()
	r.DangdangOrderID, r.DistriStatus, r.Status = o.id, strconv.Itoa(o.status), statusOf(o.status)
	r.Shop = sh.name
	r.OrderID, r.Platform = latest.EventOrderID, latest.Platform
	r.At = schemas.At(sh.s.now())
	r.EventIDs = make([]string, 0, len(o.items))
	for _, it := range o.items {
		r.EventIDs = append(r.EventIDs, it.EventID)
	}
	sh.s.m.Results.WithLabelValues(r.Outcome).Inc()
	sh.s.report(Report{Result: r, Items: o.items, DLQReason: dlqReason, Detail: detail})
}

// statusOf is the unified status a distriStatus writes back.
func statusOf(distriStatus int) string {
	switch distriStatus {
	case dangdang.DistriDelivered:
		return schemas.StatusDelivered
	case dangdang.DistriFailed:
		return schemas.StatusDeliveryFailed
	}
	return ""
}
