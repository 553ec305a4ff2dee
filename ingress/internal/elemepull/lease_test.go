package elemepull

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// TestLease on the real Redis: one holder at a time, renew and release only by the holder, a
// lost lease is seen, and every new holding gets a larger fencing token.
func TestLease(t *testing.T) {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{testenv.Redis(t)}})
	defer rdb.Close()
	ctx := context.Background()
	prefix := testenv.Name(t, "op") + ":"
	a := NewLease(rdb, prefix, "62933118", "a", 2*time.Second)
	b := NewLease(rdb, prefix, "62933118", "b", 2*time.Second)

	if ok, err := a.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("a acquire: %v %v", ok, err)
	}
	t1 := a.Token()
	if ok, err := b.TryAcquire(ctx); ok || err != nil {
		t.Fatalf("b acquired a held lease: %v %v", ok, err)
	}
	if err := b.Renew(ctx); !errors.Is(err, ErrLost) {
		t.Fatalf("b renewed a lease it does not hold: %v", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Renew(ctx); err != nil {
		t.Fatalf("a renew: %v", err)
	}
	// a is paused past its TTL (simulated by the key expiring), b takes over.
	if err := rdb.Del(ctx, a.key).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("b acquire after expiry: %v %v", ok, err)
	}
	if b.Token() <= t1 {
		t.Errorf("fencing token %d after %d: want larger", b.Token(), t1)
	}
	if err := a.Renew(ctx); !errors.Is(err, ErrLost) { // a still believes it holds: the script says no
		t.Fatalf("the stale holder renewed: %v", err)
	}

	// A stale holder that releases (it still believes it holds) must not delete the new lease.
	c := NewLease(rdb, prefix, "other-app", "c", 2*time.Second)
	d := NewLease(rdb, prefix, "other-app", "d", 2*time.Second)
	if ok, _ := c.TryAcquire(ctx); !ok {
		t.Fatal("c acquire")
	}
	_ = rdb.Del(ctx, c.key).Err()
	if ok, _ := d.TryAcquire(ctx); !ok {
		t.Fatal("d acquire")
	}
	if err := c.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := rdb.Get(ctx, d.key).Result(); v != d.value {
		t.Fatalf("the stale holder's release removed the new holder's lease (now %q)", v)
	}

	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := a.TryAcquire(ctx); !ok || a.Token() <= b.token {
		t.Errorf("re-acquire: ok=%v token %d", ok, a.Token())
	}
	if ttl := rdb.PTTL(ctx, a.key).Val(); ttl <= 0 || ttl > 2*time.Second {
		t.Errorf("lease TTL %s, want (0, 2s]", ttl)
	}
}
