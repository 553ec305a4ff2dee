package testenv_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderpipe/pipeline/plumbing/testenv"
)

func TestRedisTLSWithACL(t *testing.T) {
	e := testenv.RedisTLS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ping := func(cfg *redis.Options) error {
		cfg.Addr, cfg.MaxRetries, cfg.DialTimeout = e.Addr, -1, 3*time.Second
		c := redis.NewClient(cfg)
		defer c.Close()
		return c.Ping(ctx).Err()
	}
	t.Run("user and CA", func(t *testing.T) {
		if err := ping(&redis.Options{Username: e.Username, Password: e.Password, TLSConfig: tlsConfig(t, e.CAFile, "", "")}); err != nil {
			t.Fatalf("PING over TLS as the ACL user: %v", err)
		}
	})
	t.Run("user, CA and client certificate", func(t *testing.T) {
		if err := ping(&redis.Options{Username: e.Username, Password: e.Password, TLSConfig: tlsConfig(t, e.CAFile, e.CertFile, e.KeyFile)}); err != nil {
			t.Fatalf("PING over mutual TLS as the ACL user: %v", err)
		}
	})
	t.Run("no password", func(t *testing.T) {
		err := ping(&redis.Options{TLSConfig: tlsConfig(t, e.CAFile, "", "")})
		if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Fatalf("PING without credentials: got %v, want NOAUTH", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		err := ping(&redis.Options{Username: e.Username, Password: e.Password + "x", TLSConfig: tlsConfig(t, e.CAFile, "", "")})
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Fatalf("PING with a wrong password: got %v, want WRONGPASS", err)
		}
	})
	t.Run("plaintext", func(t *testing.T) {
		if err := ping(&redis.Options{Username: e.Username, Password: e.Password}); err == nil {
			t.Fatal("PING without TLS succeeded")
		}
	})
}

func TestRedisSentinelFailoverClient(t *testing.T) {
	e := testenv.RedisSentinel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: e.MasterName, SentinelAddrs: e.Addrs})
	defer c.Close()
	key := testenv.Name(t, "sentinel")
	if err := c.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET through the sentinels' primary: %v", err)
	}
	if v, err := c.Get(ctx, key).Result(); err != nil || v != "v" {
		t.Fatalf("GET = %q, %v; want v", v, err)
	}
	role, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(role) == 0 || role[0] != "master" {
		t.Fatalf("ROLE of the node the failover client uses = %v, %v; want master", role, err)
	}
}

func TestRedisClusterClient(t *testing.T) {
	addrs := testenv.RedisCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	prefix := testenv.Name(t, "cluster")
	owners := map[string]bool{} // primaries that answered for one of the keys
	for i := range 12 {
		key := fmt.Sprintf("%s.%d", prefix, i)
		if err := c.Set(ctx, key, i, time.Minute).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		if v, err := c.Get(ctx, key).Int(); err != nil || v != i {
			t.Fatalf("GET %s = %d, %v; want %d", key, v, err, i)
		}
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			t.Fatalf("primary for %s: %v", key, err)
		}
		owners[n.Options().Addr] = true
	}
	if len(owners) < 2 {
		t.Fatalf("12 keys all landed on %v; want keys in slots of different primaries", owners)
	}
	nodes, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER NODES: %v", err)
	}
	if got := strings.Count(nodes, "master"); got != 3 {
		t.Errorf("cluster has %d primaries, want 3:\n%s", got, nodes)
	}
	if got := strings.Count(nodes, "slave"); got != 3 {
		t.Errorf("cluster has %d replicas, want 3:\n%s", got, nodes)
	}
}
