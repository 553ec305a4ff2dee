package testenv_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// eventually retries f every 200 ms until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after %v", what, err, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRedisSentinelFailoverAfterKill9 proves the Sentinel scripts do what chaos tests need: the
// primary killed with SIGKILL is replaced by its replica, and once restarted it comes back as a
// replica of the new primary.
func TestRedisSentinelFailoverAfterKill9(t *testing.T) {
	g := testenv.OwnSentinelGroup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: g.MasterName, SentinelAddrs: g.Addrs, MaxRetries: -1})
	defer c.Close()
	if err := c.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatalf("SET before the kill: %v", err)
	}
	eventually(t, 10*time.Second, "the replica caught up", func() error {
		r := redis.NewClient(&redis.Options{Addr: g.Replica})
		defer r.Close()
		if v, err := r.Get(ctx, "k").Result(); err != nil || v != "before" {
			return fmt.Errorf("GET on the replica = %q, %v", v, err)
		}
		return nil
	})

	start := time.Now()
	testenv.RedisNodeDo(t, "kill9", g.Primary)
	eventually(t, 30*time.Second, "SET after the primary's kill -9", func() error { return c.Set(ctx, "k", "after", 0).Err() })
	t.Logf("writes resumed %v after kill -9 of the primary", time.Since(start).Round(time.Millisecond))
	// The Sentinel that led the failover knows at once; the others learn the new configuration
	// from its hello messages (every 2 s), so a loaded machine may ask one of them first.
	eventually(t, 15*time.Second, "every Sentinel names the old replica as the primary", func() error {
		for _, a := range g.Addrs {
			s := redis.NewSentinelClient(&redis.Options{Addr: a})
			addr, err := s.GetMasterAddrByName(ctx, g.MasterName).Result()
			s.Close()
			if err != nil || len(addr) != 2 || fmt.Sprintf("%s:%s", addr[0], addr[1]) != g.Replica {
				return fmt.Errorf("Sentinel %s: primary %v, %v; want the old replica %s", a, addr, err, g.Replica)
			}
		}
		return nil
	})

	testenv.RedisNodeDo(t, "restart", g.Primary)
	eventually(t, 30*time.Second, "the old primary rejoined as a replica", func() error {
		old := redis.NewClient(&redis.Options{Addr: g.Primary})
		defer old.Close()
		role, err := old.Do(ctx, "ROLE").Slice()
		if err != nil || len(role) == 0 || role[0] != "slave" {
			return fmt.Errorf("ROLE = %v, %v", role, err)
		}
		if v, err := old.Get(ctx, "k").Result(); err != nil || v != "after" {
			return fmt.Errorf("GET on the old primary = %q, %v", v, err)
		}
		return nil
	})
}

// TestRedisClusterFailoverAfterKill9 proves the Cluster scripts do what chaos tests need: a
// primary killed with SIGKILL is replaced by its replica and the cluster serves every slot again.
func TestRedisClusterFailoverAfterKill9(t *testing.T) {
	primaries := testenv.OwnRedisCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// go-redis re-reads the slot map only on MOVED or every ClusterStateReloadInterval (60 s by
	// default): a dead primary's slots stay unreachable to it until then.
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: primaries, MaxRedirects: 8, ClusterStateReloadInterval: time.Second})
	defer c.Close()
	keys := make([]string, 12)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
		if err := c.Set(ctx, keys[i], i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", keys[i], err)
		}
	}
	victim := primaries[0]
	start := time.Now()
	testenv.RedisNodeDo(t, "kill9", victim)
	eventually(t, 45*time.Second, "every key writable after the primary's kill -9", func() error {
		for _, k := range keys {
			if err := c.Set(ctx, k, "after", 0).Err(); err != nil {
				return fmt.Errorf("SET %s: %w", k, err)
			}
		}
		return nil
	})
	t.Logf("every slot writable %v after kill -9 of primary %s", time.Since(start).Round(time.Millisecond), victim)
	testenv.RedisNodeDo(t, "restart", victim)
	eventually(t, 30*time.Second, "the old primary rejoined as a replica", func() error {
		old := redis.NewClient(&redis.Options{Addr: victim})
		defer old.Close()
		role, err := old.Do(ctx, "ROLE").Slice()
		if err != nil || len(role) == 0 || role[0] != "slave" {
			return fmt.Errorf("ROLE = %v, %v", role, err)
		}
		return nil
	})
}
