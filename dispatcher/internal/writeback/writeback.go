// Package writeback reports delivery results to Dangdang in full batches and loses nothing.
//
// Per shop, events are coalesced per Dangdang order (the latest occurred_at wins; one order appears
// once per call, with its latest state) and flushed when 100 orders are waiting or when the oldest
// has waited one batch window, whichever comes first. Calls run concurrently across shops, at most
// Concurrency at a time per shop, under a per-shop rate limiter; an order is never in two calls at
// once, so its states reach Dangdang in order.
//
// Before a call, the last state sent per order (Store, Redis) filters transitions that must not be
// sent: failed → delivered never, delivered → failed only where the shop allows, and repeats.
// Transient failures (network, 5xx, rate limit, system errors, retryable per-order codes) are
// retried with capped exponential backoff and jitter, only for the orders that need it; other
// per-order codes are final rejections; orders that exhaust their attempts are dead-lettered.
// Error 176 (subscription expired) pauses the shop: its orders wait (they are not dropped) and a
// probe call is made every PauseProbe until the shop answers again.
//
// Every outcome (accepted, rejected, skipped, dead_lettered) is written through the Recorder, and
// only after the Recorder says it is durable does each event's Done run: that is what lets the
// dispatcher commit the event's offset. An event whose Done never ran is replayed after a restart.
package writeback

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/orderpipe/pipeline/dispatcher/internal/dangdang"
	"github.com/orderpipe/pipeline/dispatcher/internal/routing"
	"github.com/orderpipe/pipeline/schemas"
)

// Outcomes recorded in dangdang.results.v1 (the contract's values, in schemas).
const (
	OutcomeAccepted     = schemas.DangdangAccepted
	OutcomeRejected     = schemas.DangdangRejected
	OutcomeSkipped      = schemas.DangdangSkipped
	OutcomeDeadLettered = schemas.DangdangDeadLettered
)

// Result is one record of dangdang.results.v1 (key: the Dangdang order id): one order of one
// write-back, what was sent, Dangdang's answer, and the events it covered. It is the contract's
// type, so what the dispatcher writes is what downstream teams decode.
type Result = schemas.DangdangResult

// Recorder writes results durably and runs done once they are.
type Recorder interface {
	Record(ctx context.Context, r Result, done func()) error
}

// Item is one event's request for a Dangdang write-back.
type Item struct {
	Shop         string
	OrderID      string // Dangdang order id
	DistriStatus int
	OccurredAt   time.Time
	Stale        bool
	EventID      string
	Platform     string
	EventOrderID string // the event's own order_id
	// Trace is the event's trace context (from its traceparent header); the Dangdang call that
	// carries the order continues the first order's trace and links the others.
	Trace trace.SpanContext
	// Done runs once, after the item's outcome is recorded; dead-lettered items carry the reason.
	Done func(outcome, reason string)
}

// Config tunes the sink.
type Config struct {
	Window      time.Duration // batch window; default 1 s
	BatchSize   int           // orders per call, 1..100; default 100
	MaxAttempts int           // calls per order before the DLQ; default 8
	BackoffMin  time.Duration // default 200 ms
	BackoffMax  time.Duration // default 30 s
	// RateLimitBackoff is the least wait after a rate-limit answer; default 5 s.
	RateLimitBackoff time.Duration
	// PauseProbe is how often a paused shop is tried again; default 1 min.
	PauseProbe time.Duration
	// RetryCodes are per-order orderOperCodes that are retried rather than final; default 1208.
	RetryCodes []string
	Shops      map[string]*routing.Shop
	// Tracer makes a span of each Dangdang call; nil means no spans (the trace context still
	// reaches Dangdang when the client has a propagator).
	Tracer trace.Tracer
}

func (c *Config) defaults() {
	if c.Window <= 0 {
		c.Window = time.Second
	}
	if c.BatchSize <= 0 || c.BatchSize > dangdang.MaxOrders {
		c.BatchSize = dangdang.MaxOrders
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 200 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.RateLimitBackoff <= 0 {
		c.RateLimitBackoff = 5 * time.Second
	}
	if c.PauseProbe <= 0 {
		c.PauseProbe = time.Minute
	}
	if c.RetryCodes == nil {
		c.RetryCodes = []string{"1208"}
	}
}

// Sink is the Dangdang write-back. Use New, then Run; Submit from any goroutine.
type Sink struct {
	cfg    Config
	client *dangdang.Client
	store  Store
	rec    Recorder
	log    *zap.Logger
	m      *Metrics
	now    func() time.Time
	shops  map[string]*shop
	hard   context.Context
}

// New returns a sink for cfg.Shops.
func New(cfg Config, client *dangdang.Client, store Store, rec Recorder, m *Metrics, log *zap.Logger) *Sink {
	cfg.defaults()
	s := &Sink{cfg: cfg, client: client, store: store, rec: rec, log: log, m: m, now: time.Now, shops: map[string]*shop{}, hard: context.Background()}
	for name, sh := range cfg.Shops {
		s.shops[name] = &shop{
			s: s, name: name, cfg: sh,
			cred:     dangdang.Credentials{AppKey: sh.AppKey, AppSecret: sh.AppSecret, Session: sh.Session},
			limiter:  rate.NewLimiter(rate.Limit(sh.RatePerSecond), sh.Burst),
			in:       make(chan Item, 1024),
			results:  make(chan batchResult, sh.Concurrency+1),
			pend:     map[string]*pending{},
			inflight: map[string]bool{},
		}
		m.Paused.WithLabelValues(name).Set(0)
	}
	return s
}

// ErrUnknownShop is returned by Submit for a shop that is not configured.
var ErrUnknownShop = errors.New("unknown dangdang shop")

// Submit hands an item to its shop. It blocks while the shop's queue is full; it returns ctx's
// error if ctx ends first (the item's Done will then never run).
func (s *Sink) Submit(ctx context.Context, it Item) error {
	sh, ok := s.shops[it.Shop]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownShop, it.Shop)
	}
	select {
	case sh.in <- it:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run serves every shop until ctx ends, then flushes what is pending and returns when every shop
// is idle, or when hard ends (calls in flight are then abandoned: their events are not done).
func (s *Sink) Run(ctx, hard context.Context) error {
	s.hard = hard
	var wg sync.WaitGroup
	for _, sh := range s.shops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh.run(ctx, hard)
		}()
	}
	wg.Wait()
	return nil
}

type pending struct {
	id       string
	status   int
	occurred time.Time
	since    time.Time
	items    []Item
}

// latest is the item whose state is sent.
func (p *pending) latest() Item {
	best := p.items[0]
	for _, it := range p.items[1:] {
		if !it.OccurredAt.Before(best.OccurredAt) {
			best = it
		}
	}
	return best
}

type batchResult struct {
	ids     []string
	requeue []*pending // orders to put back (paused shop or abandoned)
	expired bool
	probe   bool
}

type shop struct {
	s        *Sink
	name     string
	cfg      *routing.Shop
	cred     dangdang.Credentials
	limiter  *rate.Limiter
	in       chan Item
	results  chan batchResult
	pend     map[string]*pending
	order    []string // FIFO of pend keys
	inflight map[string]bool
	// pendInflight counts orders waiting in pend while an earlier state of theirs is in flight.
	pendInflight int
	active       int
	paused       bool
}

func (sh *shop) add(it Item, now time.Time) {
	if it.Stale {
		sh.s.finish(sh, []Item{it}, Result{DangdangOrderID: it.OrderID, DistriStatus: strconv.Itoa(it.DistriStatus), Status: statusOf(it.DistriStatus), Outcome: OutcomeSkipped, Reason: SkipStale}, it)
		return
	}
	p, ok := sh.pend[it.OrderID]
	if !ok {
		p = &pending{id: it.OrderID, since: now}
		sh.pend[it.OrderID] = p
		sh.order = append(sh.order, it.OrderID)
		if sh.inflight[it.OrderID] {
			sh.pendInflight++
		}
	}
	p.items = append(p.items, it)
	l := p.latest()
	p.status, p.occurred = l.DistriStatus, l.OccurredAt
}

// requeue puts orders of a batch back, merging with anything newer that arrived meanwhile.
func (sh *shop) requeue(ps []*pending) {
	var front []string
	for _, p := range ps {
		if cur, ok := sh.pend[p.id]; ok {
			cur.items = append(p.items, cur.items...)
			cur.since = p.since
			l := cur.latest()
			cur.status, cur.occurred = l.DistriStatus, l.OccurredAt
			continue
		}
		sh.pend[p.id] = p
		front = append(front, p.id)
	}
	sh.order = append(front, sh.order...)
}

// eligible returns up to n waiting orders that are not in flight, oldest first, and the time the
// oldest eligible order has waited since.
func (sh *shop) eligible(n int) ([]string, time.Time) {
	var out []string
	var oldest time.Time
	for _, id := range sh.order {
		if sh.inflight[id] {
			continue
		}
		if oldest.IsZero() {
			oldest = sh.pend[id].since
		}
		if len(out) >= n {
			break
		}
		out = append(out, id)
	}
	return out, oldest
}

// countEligible is how many waiting orders are not in flight.
func (sh *shop) countEligible() int { return len(sh.pend) - sh.pendInflight }

// take removes ids from pend and marks them in flight.
func (sh *shop) take(ids []string) []*pending {
	out := make([]*pending, len(ids))
	taken := map[string]bool{}
	for i, id := range ids {
		out[i] = sh.pend[id]
		delete(sh.pend, id)
		sh.inflight[id] = true
		taken[id] = true
	}
	sh.order = slices.DeleteFunc(sh.order, func(id string) bool { return taken[id] })
	return out
}

func (sh *shop) run(ctx, hard context.Context) {
	s := sh.s
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	probe := time.NewTicker(s.cfg.PauseProbe)
	defer probe.Stop()
	draining := false
	done := ctx.Done()
	var wg sync.WaitGroup
	defer wg.Wait()

	start := func(ids []string, reason string, isProbe bool) {
		batch := sh.take(ids)
		sh.active++
		s.m.Flushes.WithLabelValues(reason).Inc()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh.results <- sh.send(hard, batch, isProbe)
		}()
	}
	// flush starts calls while a slot is free: full batches always; a partial one when the
	// window of its oldest order has ended, or when draining.
	flush := func(now time.Time) {
		if sh.paused {
			return
		}
		for sh.active < sh.cfg.Concurrency {
			ids, oldest := sh.eligible(s.cfg.BatchSize)
			if len(ids) == 0 {
				break
			}
			switch {
			case len(ids) >= s.cfg.BatchSize:
				start(ids, "size", false)
			case draining:
				start(ids, "shutdown", false)
			case !now.Before(oldest.Add(s.cfg.Window)):
				start(ids, "window", false)
			default:
				timer.Reset(oldest.Add(s.cfg.Window).Sub(now))
				return
			}
		}
		// No free slot: the next call's result triggers the next flush.
	}

	for {
		if draining && sh.active == 0 && (len(sh.pend) == 0 || sh.paused) {
			if len(sh.pend) > 0 {
				s.log.Warn("dangdang shop paused at shutdown, events left for replay", zap.String("shop", sh.name), zap.Int("orders", len(sh.pend)))
			}
			return
		}
		select {
		case it := <-sh.in:
			now := s.now()
			sh.add(it, now)
			// Take whatever else is queued before deciding, so batches fill.
		more:
			for range 4096 {
				select {
				case it := <-sh.in:
					sh.add(it, now)
				default:
					break more
				}
			}
			if sh.paused {
				continue // nothing is sent until the probe succeeds
			}
			if sh.countEligible() >= s.cfg.BatchSize || draining {
				flush(now)
			} else if _, oldest := sh.eligible(0); !oldest.IsZero() {
				d := oldest.Add(s.cfg.Window).Sub(now)
				if d <= 0 {
					flush(now)
				} else {
					timer.Reset(d)
				}
			}
		case <-timer.C:
			flush(s.now())
		case r := <-sh.results:
			sh.active--
			for _, id := range r.ids {
				delete(sh.inflight, id)
				if _, waiting := sh.pend[id]; waiting {
					sh.pendInflight--
				}
			}
			sh.requeue(r.requeue)
			switch {
			case r.expired && !sh.paused:
				sh.paused = true
				s.m.Paused.WithLabelValues(sh.name).Set(1)
				s.log.Error("dangdang subscription expired, shop paused", zap.String("shop", sh.name), zap.Int("orders", len(sh.pend)))
			case !r.expired && sh.paused && r.probe:
				sh.paused = false
				s.m.Paused.WithLabelValues(sh.name).Set(0)
				s.log.Info("dangdang shop resumed", zap.String("shop", sh.name))
			}
			flush(s.now())
		case <-probe.C:
			if sh.paused && sh.active == 0 {
				if ids, _ := sh.eligible(s.cfg.BatchSize); len(ids) > 0 {
					start(ids, "probe", true)
				}
			}
		case <-done:
			draining, done = true, nil
			flush(s.now())
		case <-hard.Done():
			// Abandon: wait for calls to return (they stop on hard), leave the rest unreported.
			for sh.active > 0 {
				<-sh.results
				sh.active--
			}
			return
		}
	}
}

// send makes one write-back of batch, with retries, and records every order's outcome.
func (sh *shop) send(ctx context.Context, batch []*pending, isProbe bool) batchResult {
	s := sh.s
	res := batchResult{probe: isProbe}
	for _, p := range batch {
		res.ids = append(res.ids, p.id)
	}
	ids := res.ids
	var last map[string]State
	if err := s.retryForever(ctx, func() (err error) {
		last, err = s.store.Load(ctx, sh.name, ids)
		return err
	}); err != nil {
		res.requeue = batch
		return res
	}
	var todo []*pending
	for _, p := range batch {
		l, known := last[p.id]
		if why := Decide(l, known, State{Status: p.status, OccurredAt: p.occurred}, sh.cfg.AllowSuccessToFailure); why != "" {
			s.m.Skipped.WithLabelValues(why).Inc()
			sh.finishPending(p, Result{Outcome: OutcomeSkipped, Reason: why})
			continue
		}
		todo = append(todo, p)
	}
	backoff := s.cfg.BackoffMin
	for attempt := 1; len(todo) > 0; attempt++ {
		if err := sh.limiter.Wait(ctx); err != nil {
			res.requeue = todo
			return res
		}
		ups := make([]dangdang.OrderUpdate, len(todo))
		for i, p := range todo {
			ups[i] = dangdang.OrderUpdate{OrderID: p.id, DistriStatus: p.status, DistriTime: p.occurred}
		}
		s.m.OrdersPerCall.Observe(float64(len(ups)))
		cctx, span := s.startCall(ctx, sh.name, todo, attempt)
		resp, err := s.client.Update(cctx, sh.cred, ups)
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		if ctx.Err() != nil {
			res.requeue = todo
			return res
		}
		var retry []*pending
		wait := backoff
		reason := ""
		var ae *dangdang.APIError
		switch {
		case errors.As(err, &ae) && ae.SubscriptionExpired():
			s.m.Calls.WithLabelValues(sh.name, "expired").Inc()
			res.requeue, res.expired = todo, true
			return res
		case errors.As(err, &ae) && ae.RateLimited():
			s.m.Calls.WithLabelValues(sh.name, "rate_limited").Inc()
			retry, reason, wait = todo, "rate_limited", max(backoff, s.cfg.RateLimitBackoff)
		case err != nil:
			s.m.Calls.WithLabelValues(sh.name, callOutcome(err)).Inc()
			retry, reason = todo, callOutcome(err)
			s.log.Warn("dangdang call failed", zap.String("shop", sh.name), zap.Int("orders", len(todo)), zap.Int("attempt", attempt), zap.Error(err))
		default:
			byID := make(map[string]dangdang.OrderResult, len(resp.Orders))
			for _, o := range resp.Orders {
				byID[o.OrderID] = o
			}
			accepted := map[string]State{}
			var acc []*pending
			partial := false
			for _, p := range todo {
				o, ok := byID[p.id]
				switch {
				case !ok:
					retry, partial = append(retry, p), true
					reason = "missing_in_answer"
				case o.OK():
					accepted[p.id] = State{Status: p.status, OccurredAt: p.occurred}
					acc = append(acc, p)
				case slices.Contains(s.cfg.RetryCodes, o.Code):
					retry, partial = append(retry, p), true
					reason = "order_code_" + o.Code
				default:
					partial = true
					s.m.Rejected.WithLabelValues(o.Code).Inc()
					sh.finishPending(p, Result{Outcome: OutcomeRejected, OrderOperCode: o.Code, OrderOperation: o.Message})
				}
			}
			if partial {
				s.m.Calls.WithLabelValues(sh.name, "partial").Inc()
			} else {
				s.m.Calls.WithLabelValues(sh.name, "ok").Inc()
			}
			if len(acc) > 0 {
				if err := s.retryForever(ctx, func() error { return s.store.Save(ctx, sh.name, accepted) }); err != nil {
					// Accepted by Dangdang but not remembered: leave unreported so a replay resends
					// (Dangdang accepts re-marking the same state).
					res.requeue = append(acc, retry...)
					return res
				}
				now := s.now()
				for _, p := range acc {
					s.m.Delay.Observe(now.Sub(p.occurred).Seconds())
					sh.finishPending(p, Result{Outcome: OutcomeAccepted, OrderOperCode: byID[p.id].Code, OrderOperation: byID[p.id].Message})
				}
			}
		}
		if len(retry) == 0 {
			break
		}
		if attempt >= s.cfg.MaxAttempts {
			for _, p := range retry {
				s.m.DeadLettered.Inc()
				sh.finishPending(p, Result{Outcome: OutcomeDeadLettered, Reason: fmt.Sprintf("retries exhausted after %d attempts: %s", attempt, reason)})
			}
			break
		}
		s.m.Retries.WithLabelValues(sh.name, reason).Add(float64(len(retry)))
		d := wait/2 + rand.N(wait/2+1)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			res.requeue = retry
			return res
		}
		backoff = min(backoff*2, s.cfg.BackoffMax)
		todo = retry
	}
	return res
}

func callOutcome(err error) string {
	var he *dangdang.HTTPError
	var ae *dangdang.APIError
	switch {
	case errors.As(err, &he):
		if he.StatusCode >= 500 {
			return "http_5xx"
		}
		return "http_error"
	case errors.As(err, &ae):
		return "system_error"
	case errors.Is(err, dangdang.ErrMalformed):
		return "malformed"
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Timeout"):
		return "timeout"
	}
	return "network"
}

// retryForever runs f until it succeeds or ctx ends (Redis outages: wait, never skip).
func (s *Sink) retryForever(ctx context.Context, f func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("dangdang state store failed, retrying", zap.Error(err))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (sh *shop) finishPending(p *pending, r Result) {
	r.DangdangOrderID, r.DistriStatus, r.Status = p.id, strconv.Itoa(p.status), statusOf(p.status)
	sh.s.finish(sh, p.items, r, p.latest())
}

// finish records r for items, then runs their Done.
func (s *Sink) finish(sh *shop, items []Item, r Result, latest Item) {
	r.Shop = sh.name
	r.OrderID, r.Platform = latest.EventOrderID, latest.Platform
	r.At = schemas.At(s.now())
	r.EventIDs = make([]string, 0, len(items))
	for _, it := range items {
		r.EventIDs = append(r.EventIDs, it.EventID)
	}
	s.m.Results.WithLabelValues(r.Outcome).Inc()
	// The Recorder queues; it only fails when the dispatcher is stopping, and then the events
	// stay unfinished and are replayed.
	_ = s.rec.Record(s.hard, r, func() {
		for _, it := range items {
			if it.Done != nil {
				it.Done(r.Outcome, r.Reason)
			}
		}
	})
}

// statusOf is the unified status a distriStatus writes back.
func statusOf(distriStatus int) string {
	switch distriStatus {
	case 1:
		return schemas.StatusDelivered
	case 2:
		return schemas.StatusDeliveryFailed
	}
	return ""
}

// startCall starts the span of one Dangdang call. Its parent is the trace of the first order that
// has one, so a callback's trace runs from the ingress to Dangdang; every other order's trace is
// linked.
func (s *Sink) startCall(ctx context.Context, shop string, todo []*pending, attempt int) (context.Context, trace.Span) {
	var parent trace.SpanContext
	var links []trace.Link
	for _, p := range todo {
		sc := p.latest().Trace
		if !sc.IsValid() {
			continue
		}
		if !parent.IsValid() {
			parent = sc
			continue
		}
		links = append(links, trace.Link{SpanContext: sc})
	}
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	tracer := s.cfg.Tracer
	if tracer == nil {
		tracer = noop.NewTracerProvider().Tracer("")
	}
	return tracer.Start(ctx, "dangdang.orders.distristatus.update", trace.WithSpanKind(trace.SpanKindClient), trace.WithLinks(links...),
		trace.WithAttributes(attribute.String("dangdang.shop", shop), attribute.Int("dangdang.orders", len(todo)), attribute.Int("dangdang.attempt", attempt)))
}
