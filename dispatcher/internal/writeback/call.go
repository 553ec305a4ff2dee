package writeback

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/dispatcher/internal/dangdang"
	"github.com/orderpipe/pipeline/plumbing/retry"
)

// callResult is what one call of a batch hands back to the shop loop. Orders with a final
// outcome were reported by the call; the others are to retry (a transient failure: spends an
// attempt) or to requeue (a pause, a rate limit or a stop: spends none).
type callResult struct {
	batch       []*order
	retry       []*order
	requeue     []*order
	reason      string // why retry
	backoff     *retry.Backoff
	expired     bool // 176
	rateLimited bool
	answered    bool // Dangdang answered, and not with 176
}

// call makes one attempt for batch: re-reads the last states sent, reports what must not be
// sent, waits for the shop's limiter, calls Dangdang and sorts the answer. ctx is the hard stop.
func (sh *shop) call(ctx context.Context, batch []*order) callResult {
	r := callResult{batch: batch}
	for _, o := range batch {
		if o.backoff != nil {
			r.backoff = o.backoff
			break
		}
	}
	todo, ok := sh.filter(ctx, batch)
	switch {
	case !ok:
		r.requeue = batch
		return r
	case len(todo) == 0:
		return r // no call was made: nothing was learnt about the shop
	}
	if err := sh.s.cfg.Limiter.Wait(ctx, sh.name); err != nil {
		r.requeue = todo
		return r
	}
	resp, err := sh.update(ctx, todo)
	if ctx.Err() != nil {
		r.requeue = todo
		return r
	}
	sh.classify(ctx, &r, todo, resp, err)
	return r
}

// filter reads the orders' last states (waiting out a Redis outage; false at the hard stop) and
// reports the orders that must not be sent, or that were sent before a crash.
func (sh *shop) filter(ctx context.Context, batch []*order) (todo []*order, ok bool) {
	s := sh.s
	ids := make([]string, len(batch))
	for i, o := range batch {
		ids[i] = o.id
	}
	var last map[string]State
	err := retry.Do(ctx, retry.Policy{}, func(ctx context.Context) (err error) {
		last, err = s.store.Load(ctx, sh.name, ids)
		return err
	}, func(err error, _ time.Duration) {
		s.log.Warn("dangdang state store failed, retrying", zap.String("shop", sh.name), zap.Error(err))
	})
	if err != nil {
		return nil, false
	}
	for _, o := range batch {
		l, known := last[o.id]
		next := State{Status: o.status, OccurredAt: o.occurred}
		if Replayed(l, known, next) {
			sh.finish(o, Result{Outcome: OutcomeAccepted, OrderOperCode: l.Code, OrderOperation: l.Message}, "", "")
			continue
		}
		if why := Decide(l, known, next, sh.cfg.AllowSuccessToFailure); why != "" {
			s.m.Skipped.WithLabelValues(why).Inc()
			sh.finish(o, Result{Outcome: OutcomeSkipped, Reason: why}, "", "")
			continue
		}
		todo = append(todo, o)
	}
	return todo, true
}

// update makes the Dangdang call for todo, in a span of its own.
func (sh *shop) update(ctx context.Context, todo []*order) (*dangdang.Response, error) {
	ups := make([]dangdang.OrderUpdate, len(todo))
	for i, o := range todo {
		ups[i] = dangdang.OrderUpdate{OrderID: o.id, DistriStatus: o.status, DistriTime: o.occurred}
	}
	sh.s.m.OrdersPerCall.Observe(float64(len(ups)))
	cctx, span := sh.s.startCall(ctx, sh.name, todo, todo[0].attempts+1)
	defer span.End()
	resp, err := sh.s.client.Update(cctx, sh.cred, ups)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return resp, err
}

// classify sorts a call's answer into r.
func (sh *shop) classify(ctx context.Context, r *callResult, todo []*order, resp *dangdang.Response, err error) {
	calls := sh.s.m.Calls
	var ae *dangdang.APIError
	switch {
	case errors.As(err, &ae) && ae.SubscriptionExpired():
		calls.WithLabelValues(sh.name, "expired").Inc()
		r.requeue, r.expired = todo, true
	case errors.As(err, &ae) && ae.RateLimited():
		calls.WithLabelValues(sh.name, "rate_limited").Inc()
		r.requeue, r.rateLimited, r.answered = todo, true, true
	case err != nil:
		outcome := callOutcome(err)
		calls.WithLabelValues(sh.name, outcome).Inc()
		r.retry, r.reason, r.answered = todo, outcome, ae != nil
		sh.s.log.Warn("dangdang call failed", zap.String("shop", sh.name), zap.Int("orders", len(todo)), zap.Int("attempt", todo[0].attempts+1), zap.Error(err))
	default:
		r.answered = true
		sh.perOrder(ctx, r, todo, resp)
	}
}

// perOrder sorts per-order answers: accepted (state saved, then reported), rejected (reported),
// or retried.
func (sh *shop) perOrder(ctx context.Context, r *callResult, todo []*order, resp *dangdang.Response) {
	s := sh.s
	byID := make(map[string]dangdang.OrderResult, len(resp.Orders))
	for _, o := range resp.Orders {
		byID[o.OrderID] = o
	}
	accepted := map[string]State{}
	var acc []*order
	partial := false
	for _, o := range todo {
		a, ok := byID[o.id]
		switch {
		case !ok:
			r.retry, r.reason, partial = append(r.retry, o), "missing_in_answer", true
		case a.OK():
			accepted[o.id] = State{Status: o.status, OccurredAt: o.occurred, Code: a.Code, Message: a.Message}
			acc = append(acc, o)
		case slices.Contains(s.cfg.RetryCodes, a.Code):
			r.retry, r.reason, partial = append(r.retry, o), "order_code_"+a.Code, true
		default:
			partial = true
			s.m.Rejected.WithLabelValues(a.Code).Inc()
			sh.finish(o, Result{Outcome: OutcomeRejected, OrderOperCode: a.Code, OrderOperation: a.Message}, "", "")
		}
	}
	if partial {
		s.m.Calls.WithLabelValues(sh.name, "partial").Inc()
	} else {
		s.m.Calls.WithLabelValues(sh.name, "ok").Inc()
	}
	if len(acc) == 0 {
		return
	}
	err := retry.Do(ctx, retry.Policy{}, func(ctx context.Context) error { return s.store.Save(ctx, sh.name, accepted) },
		func(err error, _ time.Duration) {
			s.log.Warn("dangdang state store failed, retrying", zap.String("shop", sh.name), zap.Error(err))
		})
	if err != nil {
		// Accepted but not remembered (hard stop): left unreported, so a replay re-sends it
		// (Dangdang accepts re-marking the same state).
		r.requeue = append(r.requeue, acc...)
		return
	}
	now := s.now()
	for _, o := range acc {
		s.m.Delay.Observe(now.Sub(o.occurred).Seconds())
		a := byID[o.id]
		sh.finish(o, Result{Outcome: OutcomeAccepted, OrderOperCode: a.Code, OrderOperation: a.Message}, "", "")
	}
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

// startCall starts the span of one Dangdang call. Its parent is the trace of the first order that
// has one, so a callback's trace runs from the ingress to Dangdang; every other order's trace is
// linked.
func (s *Sink) startCall(ctx context.Context, shop string, todo []*order, attempt int) (context.Context, trace.Span) {
	var parent trace.SpanContext
	var links []trace.Link
	for _, o := range todo {
		sc := o.latest().Trace
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
