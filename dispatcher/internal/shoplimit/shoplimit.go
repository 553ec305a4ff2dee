// Package shoplimit is the one call rate per Dangdang shop, however many dispatcher replicas
// there are. Each shop's limit (rate_per_second, burst of DANGDANG_SHOPS) is a GCRA bucket in
// Redis (github.com/go-redis/redis_rate, which runs the check as one Lua script against Redis's
// clock), shared by every replica: twelve replicas together call a shop at its configured rate,
// not twelve times it.
//
// When Redis cannot answer (down, slow, failing over), Wait falls back to a local
// golang.org/x/time/rate limiter per shop with the same rate and burst, so write-back keeps going:
// each replica then keeps the limit on its own, and the shop may see up to replicas × rate until
// Redis answers again. Every fallback is logged (once per outage) and counted
// (dispatcher_shop_limit_fallbacks_total); dispatcher_shop_limit_shared says which mode is on.
package shoplimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Limit is one shop's call rate.
type Limit struct {
	// PerSecond is the sustained rate, calls per second (> 0).
	PerSecond float64
	// Burst is how many calls may go at once after a quiet spell (>= 1).
	Burst int
}

// Config configures New.
type Config struct {
	// Redis is the shared store; any go-redis client (single node, Sentinel, Cluster).
	Redis redis.UniversalClient
	// KeyPrefix namespaces the keys (REDIS_KEY_PREFIX); the key of a shop is
	// rate:<KeyPrefix>shoplimit:<shop>.
	KeyPrefix string
	// Shops are the limits by shop name.
	Shops map[string]Limit
	// RedisTimeout bounds one Redis check; beyond it the call falls back. Default 500 ms.
	RedisTimeout time.Duration
	// RetryRedisAfter: after a failed check, calls go straight to the local limiter for this
	// long before Redis is tried again, so an unreachable Redis does not slow every call.
	// Default 1 s.
	RetryRedisAfter time.Duration
	Log             *zap.Logger
	Registry        prometheus.Registerer
}

// ErrUnknownShop is returned by Wait for a shop that has no limit.
var ErrUnknownShop = errors.New("unknown shop")

// Limiter implements Wait for the dispatcher's write-back.
type Limiter struct {
	c      Config
	rl     *redis_rate.Limiter
	limits map[string]redis_rate.Limit
	local  map[string]*rate.Limiter

	mu        sync.Mutex
	degraded  bool      // last Redis check failed
	failedAt  time.Time // when it failed
	fallbacks *prometheus.CounterVec
	shared    prometheus.Gauge
}

// New builds a Limiter and registers its metrics.
func New(c Config) (*Limiter, error) {
	if c.Redis == nil {
		return nil, errors.New("shoplimit: no Redis client")
	}
	if c.RedisTimeout <= 0 {
		c.RedisTimeout = 500 * time.Millisecond
	}
	if c.RetryRedisAfter <= 0 {
		c.RetryRedisAfter = time.Second
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	l := &Limiter{
		c:      c,
		rl:     redis_rate.NewLimiter(c.Redis),
		limits: make(map[string]redis_rate.Limit, len(c.Shops)),
		local:  make(map[string]*rate.Limiter, len(c.Shops)),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatcher_shop_limit_fallbacks_total",
			Help: "Dangdang calls whose shop rate limit was kept by the local limiter because Redis did not answer, by shop.",
		}, []string{"shop"}),
		shared: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dispatcher_shop_limit_shared",
			Help: "1 while the per-shop rate limits are shared through Redis across replicas, 0 while the last check fell back to the local limiter.",
		}),
	}
	for name, s := range c.Shops {
		if !(s.PerSecond > 0) || s.Burst < 1 || math.IsInf(s.PerSecond, 0) {
			return nil, fmt.Errorf("shoplimit: shop %q: rate %v/s burst %d: want a rate > 0 and a burst >= 1", name, s.PerSecond, s.Burst)
		}
		l.limits[name] = gcraLimit(s)
		l.local[name] = rate.NewLimiter(rate.Limit(s.PerSecond), s.Burst)
		l.fallbacks.WithLabelValues(name)
	}
	l.shared.Set(1)
	if c.Registry != nil {
		if err := c.Registry.Register(l.fallbacks); err != nil {
			return nil, fmt.Errorf("shoplimit: register metrics: %w", err)
		}
		if err := c.Registry.Register(l.shared); err != nil {
			return nil, fmt.Errorf("shoplimit: register metrics: %w", err)
		}
	}
	return l, nil
}

// gcraLimit expresses calls per second as redis_rate's whole events per period. GCRA only uses
// the emission interval (Period / Rate) and the burst, so a fractional rate becomes a longer
// period: 0.5/s is 1 per 2 s, 2.5/s is 5 per 2 s (to the millisecond).
func gcraLimit(s Limit) redis_rate.Limit {
	if s.PerSecond == math.Trunc(s.PerSecond) {
		return redis_rate.Limit{Rate: int(s.PerSecond), Burst: s.Burst, Period: time.Second}
	}
	period := time.Duration(math.Round(1000/s.PerSecond)) * time.Millisecond
	return redis_rate.Limit{Rate: 1, Burst: s.Burst, Period: period}
}

// Wait blocks until the shop may make one Dangdang call, or ctx ends (its error is returned).
func (l *Limiter) Wait(ctx context.Context, shop string) error {
	limit, ok := l.limits[shop]
	if !ok {
		return fmt.Errorf("shoplimit: wait for shop %q: %w", shop, ErrUnknownShop)
	}
	key := l.c.KeyPrefix + "shoplimit:" + shop
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var res *redis_rate.Result
		err := errRedisResting
		if !l.resting() {
			rctx, cancel := context.WithTimeout(ctx, l.c.RedisTimeout)
			res, err = l.rl.Allow(rctx, key, limit)
			cancel()
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			l.fellBack(shop, err)
			if err := l.local[shop].Wait(ctx); err != nil {
				return fmt.Errorf("shoplimit: wait for shop %q locally: %w", shop, err)
			}
			return nil
		}
		l.recovered()
		if res.Allowed > 0 {
			// Keep the local bucket in step, so a fallback does not start with a full burst.
			l.local[shop].Allow()
			return nil
		}
		t := time.NewTimer(res.RetryAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// errRedisResting stands for the failure of a Redis check skipped within RetryRedisAfter.
var errRedisResting = errors.New("redis failed recently")

// resting reports whether Redis failed less than RetryRedisAfter ago.
func (l *Limiter) resting() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.degraded && time.Since(l.failedAt) < l.c.RetryRedisAfter
}

func (l *Limiter) fellBack(shop string, err error) {
	l.fallbacks.WithLabelValues(shop).Inc()
	l.mu.Lock()
	first := !l.degraded
	l.degraded = true
	if err != errRedisResting {
		l.failedAt = time.Now()
	}
	l.mu.Unlock()
	l.shared.Set(0)
	if first {
		l.c.Log.Warn("shop limit falls back to local limiter", zap.String("shop", shop), zap.Error(err))
	}
}

func (l *Limiter) recovered() {
	l.mu.Lock()
	was := l.degraded
	l.degraded = false
	l.mu.Unlock()
	if was {
		l.shared.Set(1)
		l.c.Log.Info("shop limit shared through redis again")
	}
}
