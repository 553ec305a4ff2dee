package elemepull

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease is one app's poller lease in Redis: a key holding "<token>:<owner>" with a TTL, set only
// when absent (the SET NX PX pattern, done in a script that also draws the fencing token), renewed
// and released only by its holder (compare-and-PEXPIRE, compare-and-DEL scripts).
//
// The fencing token is drawn from a counter at every acquisition, so a later holder always has a
// larger token. The poller checks, before it pulls, that the lease still holds its own token: a
// holder that was paused past its TTL (GC, a frozen VM) and lost the lease stops before its next
// call instead of racing the new holder. Kafka cannot check the token on a write, so a stale
// holder's in-flight round may still write: that is the "second instance" case, made harmless by
// the downstream dedup (same key, same body, same event_id), and never a loss, because a message
// is confirmed only after some holder's write was acknowledged.
//
// Both keys share the hash tag {elemepull:<appId>}, so the scripts run on Redis Cluster.
type Lease struct {
	rdb     redis.UniversalClient
	key     string
	fence   string
	owner   string
	ttl     time.Duration
	mu      sync.Mutex // the renewer goroutine and the poll loop share a Lease
	value   string
	token   int64
	holding bool
}

// NewLease returns the lease of appID under prefix for owner (an instance id, unique per process).
func NewLease(rdb redis.UniversalClient, prefix, appID, owner string, ttl time.Duration) *Lease {
	tag := "{elemepull:" + appID + "}"
	return &Lease{rdb: rdb, key: prefix + tag + ":lease", fence: prefix + tag + ":fence", owner: owner, ttl: ttl}
}

var (
	acquireScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
local tok = redis.call('INCR', KEYS[2])
local v = tok .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
return v`)
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// ErrLost is returned by Renew when the lease is no longer this holder's.
var ErrLost = errors.New("lease lost")

// TryAcquire takes the lease if nobody holds it. It reports whether this holder holds it now.
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, err := acquireScript.Run(ctx, l.rdb, []string{l.key, l.fence}, l.owner, l.ttl.Milliseconds()).Text()
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", l.key, err)
	}
	tok, owner, _ := strings.Cut(v, ":")
	if owner != l.owner {
		l.holding = false
		return false, nil
	}
	if l.holding && v == l.value {
		return true, nil // our own lease, still there (Renew's job, but harmless)
	}
	n, err := strconv.ParseInt(tok, 10, 64)
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: bad value %q", l.key, v)
	}
	l.value, l.token, l.holding = v, n, true
	return true, nil
}

// Renew extends the lease by its TTL; ErrLost when it is no longer ours.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.holding {
		return ErrLost
	}
	n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.value, l.ttl.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.key, err)
	}
	if n != 1 {
		l.holding = false
		return ErrLost
	}
	return nil
}

// Release gives the lease up if it is still ours.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.holding {
		return nil
	}
	l.holding = false
	if err := releaseScript.Run(ctx, l.rdb, []string{l.key}, l.value).Err(); err != nil {
		return fmt.Errorf("release lease %s: %w", l.key, err)
	}
	return nil
}

// Token is the fencing token of the current holding (0 when not holding).
func (l *Lease) Token() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.holding {
		return 0
	}
	return l.token
}
