// Package writeback reports delivery results to Dangdang in full batches and loses nothing.
//
// Per shop, events are coalesced per Dangdang order (the latest occurred_at wins; one order appears
// once per call, with its latest state) and flushed when BatchSize orders are waiting or when the
// oldest has waited one batch window, whichever comes first. Calls run concurrently across shops,
// at most Concurrency at a time per shop, under a per-shop Limiter; an order is never in two calls
// at once, so its states reach Dangdang in order.
//
// Before every attempt, the last state sent per order (Store, Redis) is read again and filters
// transitions that must not be sent: failed → delivered never, delivered → failed only where the
// shop allows, and repeats. After an acceptance the state is saved with compare-and-set on
// occurred_at, together with Dangdang's answer. Transient failures (network, 5xx, system errors,
// retryable per-order codes, orders missing from an answer) are retried with the plumbing's retry
// policy, only for the orders that need it, MaxAttempts calls per order at most; other per-order
// codes are final rejections. A rate-limit answer pauses the whole shop with backoff and spends no
// attempt. Error 176 (subscription expired) pauses the shop: its orders wait, a probe call is
// made every PauseProbe, and only a real answer that is not 176 resumes it. An order that waited
// longer than ParkAfter, or that the dispatcher asks to park (Park), is parked: its events go to
// the DLQ with reason dangdang_parked, from where the replay tool re-drives them.
//
// The package records nothing itself: every final outcome is handed, exactly once per order and
// write-back, to the report function as a Report (the dangdang.results.v1 record and the items it
// covers). The receiver makes the result durable and then completes the items (Report.Complete).
// Every Item's Done runs exactly once: with its outcome, or with an error when it was abandoned
// at a hard stop (its event is then not committed, and is replayed).
package writeback

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/orderpipe/pipeline/dispatcher/internal/dangdang"
	"github.com/orderpipe/pipeline/dispatcher/internal/routing"
	"github.com/orderpipe/pipeline/dispatcher/internal/shutdown"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/schemas"
)

// Outcomes recorded in dangdang.results.v1 (the contract's values, in schemas).
const (
	OutcomeAccepted     = schemas.DangdangAccepted
	OutcomeRejected     = schemas.DangdangRejected
	OutcomeSkipped      = schemas.DangdangSkipped
	OutcomeDeadLettered = schemas.DangdangDeadLettered
)

// DLQ reasons of the events of a dead-lettered order.
const (
	// DLQRetriesExhausted: the order's attempts ran out on transient failures.
	DLQRetriesExhausted = "dangdang_retries_exhausted"
	// DLQParked: the order waited past the bound (a paused or rate-limited shop) and was parked
	// so its source offset could be committed; replay it when the shop is back.
	DLQParked = "dangdang_parked"
)

// Result is one record of dangdang.results.v1 (key: the Dangdang order id): one order of one
// write-back, what was sent, Dangdang's answer, and the events it covered.
type Result = schemas.DangdangResult

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
	// Trace is the event's trace context; the Dangdang call that carries the order continues the
	// first order's trace and links the others.
	Trace trace.SpanContext
	// Done runs exactly once (unless Submit returned an error).
	Done func(Outcome)
}

// Outcome completes an Item.
type Outcome struct {
	// DLQReason, when set, means the item's event must go to the DLQ with this reason.
	DLQReason string
	Detail    string
	// Err is set when the outcome was not made durable (a hard stop): the event is replayed.
	Err error
}

// Report is the final outcome of one order of one write-back.
type Report struct {
	Result    Result
	Items     []Item
	DLQReason string
	Detail    string
}

// Complete runs every item's Done once the result is durable (err == nil) or could not be made
// durable (err).
func (r Report) Complete(err error) {
	for _, it := range r.Items {
		it.Done(Outcome{DLQReason: r.DLQReason, Detail: r.Detail, Err: err})
	}
}

// Limiter spaces one shop's calls: Wait returns when a call may start, or ctx's error. The
// Redis-shared limiter (internal/shoplimit) satisfies it; LocalLimiter is the in-process one.
type Limiter interface {
	Wait(ctx context.Context, shop string) error
}

// LocalLimiter is one x/time/rate limiter per shop (rate_per_second, burst).
type LocalLimiter map[string]*rate.Limiter

// NewLocalLimiter returns the in-process limiters of shops.
func NewLocalLimiter(shops map[string]*routing.Shop) LocalLimiter {
	l := LocalLimiter{}
	for name, sh := range shops {
		l[name] = rate.NewLimiter(rate.Limit(sh.RatePerSecond), sh.Burst)
	}
	return l
}

// Wait implements Limiter.
func (l LocalLimiter) Wait(ctx context.Context, shop string) error {
	if lim := l[shop]; lim != nil {
		return lim.Wait(ctx)
	}
	return nil
}

// Config tunes the sink.
type Config struct {
	Window      time.Duration // batch window; default 1 s
	BatchSize   int           // orders per call, 1..100; default 100
	MaxAttempts int           // calls per order before the DLQ; default 8
	BackoffMin  time.Duration // default 200 ms
	BackoffMax  time.Duration // default 30 s
	// RateLimitBackoff is the least a shop waits after a rate-limit answer; default 5 s.
	RateLimitBackoff time.Duration
	// PauseProbe is how often a paused shop is tried again (and waiting orders checked against
	// ParkAfter); default 1 min.
	PauseProbe time.Duration
	// ParkAfter is how long an order may wait (paused or rate-limited shop) before it is parked
	// in the DLQ; default 15 min.
	ParkAfter time.Duration
	// RetryCodes are per-order orderOperCodes that are retried rather than final; default 1208.
	RetryCodes []string
	Shops      map[string]*routing.Shop
	// Limiter spaces each shop's calls; nil means LocalLimiter over Shops.
	Limiter Limiter
	// Tracer makes a span of each Dangdang call; nil means no spans.
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
	if c.ParkAfter <= 0 {
		c.ParkAfter = 15 * time.Minute
	}
	if c.RetryCodes == nil {
		c.RetryCodes = []string{"1208"}
	}
	if c.Limiter == nil {
		c.Limiter = NewLocalLimiter(c.Shops)
	}
}

// Sink is the Dangdang write-back. Use New, then Run; Submit and Park from any goroutine.
type Sink struct {
	cfg    Config
	client *dangdang.Client
	store  Store
	report func(Report)
	log    *zap.Logger
	m      *Metrics
	now    func() time.Time
	shops  map[string]*shop
}

// New returns a sink for cfg.Shops. report receives every final outcome; it must not block.
func New(cfg Config, client *dangdang.Client, store Store, report func(Report), m *Metrics, log *zap.Logger) *Sink {
	cfg.defaults()
	s := &Sink{cfg: cfg, client: client, store: store, report: report, log: log, m: m, now: time.Now, shops: map[string]*shop{}}
	for name, sh := range cfg.Shops {
		s.shops[name] = newShop(s, name, sh)
		m.Paused.WithLabelValues(name).Set(0)
	}
	return s
}

// ErrUnknownShop is returned by Submit for a shop that is not configured.
var ErrUnknownShop = errors.New("unknown dangdang shop")

// Submit hands an item to its shop, waiting while the shop's queue is full. If ctx ends first,
// the item is completed with ctx's error. An unknown shop is an error, and Done does not run.
func (s *Sink) Submit(ctx context.Context, it Item) error {
	sh, ok := s.shops[it.Shop]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownShop, it.Shop)
	}
	select {
	case sh.in <- it:
	case <-ctx.Done():
		it.Done(Outcome{Err: ctx.Err()})
	}
	return nil
}

// Park asks the shop to park an order if it is waiting (not in a call): its events go to the DLQ
// with reason dangdang_parked. It never blocks.
func (s *Sink) Park(shopName, orderID string) {
	if sh, ok := s.shops[shopName]; ok {
		sh.requestPark(orderID)
	}
}

// Run serves every shop until the soft stop, then flushes what is pending and returns when every
// shop is idle, or at the hard stop (calls in flight are then abandoned: their items complete
// with shutdown.ErrStopped).
func (s *Sink) Run(stop shutdown.Stop) error {
	var wg sync.WaitGroup
	for _, sh := range s.shops {
		wg.Go(func() { sh.run(stop) })
	}
	wg.Wait()
	return nil
}

func (s *Sink) retryPolicy() retry.Policy {
	return retry.Policy{Min: s.cfg.BackoffMin, Max: s.cfg.BackoffMax}
}

func (s *Sink) rateLimitPolicy() retry.Policy {
	return retry.Policy{Min: s.cfg.RateLimitBackoff, Max: max(s.cfg.BackoffMax, s.cfg.RateLimitBackoff)}
}
