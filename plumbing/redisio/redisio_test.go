package redisio_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/redisio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func load(t *testing.T, env map[string]string) (redisio.Config, error) {
	t.Helper()
	l := envconfig.New(envOf(env))
	c := redisio.Load(l, "127.0.0.1:6379")
	return c, l.Err()
}

func TestLoadEveryVariable(t *testing.T) {
	dir := t.TempDir()
	pw, user, spw := filepath.Join(dir, "pw"), filepath.Join(dir, "user"), filepath.Join(dir, "spw")
	for p, v := range map[string]string{pw: "s3cret\n", user: "app\n", spw: "sentinel-pw"} {
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := load(t, map[string]string{
		"REDIS_ADDR": "s1:26379,s2:26379", "REDIS_MASTER_NAME": "mymaster", "REDIS_USERNAME_FILE": user, "REDIS_PASSWORD_FILE": pw,
		"REDIS_SENTINEL_USERNAME": "sent", "REDIS_SENTINEL_PASSWORD_FILE": spw, "REDIS_DB": "2", "REDIS_TLS": "true",
		"REDIS_TLS_SERVER_NAME": "redis.internal", "REDIS_TLS_INSECURE_SKIP_VERIFY": "true",
		"REDIS_DIAL_TIMEOUT": "1s", "REDIS_READ_TIMEOUT": "2s", "REDIS_WRITE_TIMEOUT": "4s", "REDIS_POOL_SIZE": "40",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode() != redisio.ModeSentinel || strings.Join(c.Addrs, ",") != "s1:26379,s2:26379" || c.MasterName != "mymaster" ||
		c.Username != "app" || c.Password.Reveal() != "s3cret" || c.SentinelUsername != "sent" || c.SentinelPassword.Reveal() != "sentinel-pw" ||
		c.DB != 2 || !c.TLS || c.TLSServerName != "redis.internal" || !c.TLSInsecureSkipVerify ||
		c.DialTimeout != time.Second || c.ReadTimeout != 2*time.Second || c.WriteTimeout != 4*time.Second || c.PoolSize != 40 {
		t.Fatalf("config = %+v", c)
	}
	if s := fmt.Sprintf("%+v", c); strings.Contains(s, "s3cret") || strings.Contains(s, "sentinel-pw") {
		t.Errorf("printed config holds a password: %s", s)
	}
	c, err = load(t, map[string]string{"REDIS_ADDR": "a:1,b:2", "REDIS_CLUSTER": "true"})
	if err != nil || c.Mode() != redisio.ModeCluster {
		t.Fatalf("cluster: %+v %v", c, err)
	}
	c, err = load(t, nil)
	if err != nil || c.Mode() != redisio.ModeSingle || c.Addrs[0] != "127.0.0.1:6379" || c.TLS || c.DialTimeout != 2*time.Second ||
		c.ReadTimeout != 3*time.Second || c.WriteTimeout != 3*time.Second {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

// TestConflictsListedAtOnce: conflicting settings are all named in one error.
func TestConflictsListedAtOnce(t *testing.T) {
	_, err := load(t, map[string]string{
		"REDIS_CLUSTER": "true", "REDIS_MASTER_NAME": "m", "REDIS_DB": "3", "REDIS_TLS_CA_FILE": "/ca",
		"REDIS_TLS_CERT_FILE": "/c", "REDIS_PASSWORD": "x", "REDIS_PASSWORD_FILE": "/pw", "REDIS_READ_TIMEOUT": "soon",
	})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, w := range []string{"REDIS_CLUSTER and REDIS_MASTER_NAME", "REDIS_CLUSTER and REDIS_DB", "REDIS_TLS_CA_FILE",
		"REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE", "REDIS_PASSWORD_FILE", "REDIS_READ_TIMEOUT"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not name %q:\n%v", w, err)
		}
	}
	_, err = load(t, map[string]string{"REDIS_ADDR": "a:1,b:2", "REDIS_SENTINEL_PASSWORD": "p"})
	for _, w := range []string{"REDIS_ADDR", "REDIS_CLUSTER=true", "REDIS_SENTINEL_PASSWORD"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error does not name %q: %v", w, err)
		}
	}
}

func client(t *testing.T, env map[string]string) (redisio.Config, redis.UniversalClient) {
	t.Helper()
	c, err := load(t, env)
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := c.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return c, rdb
}

// TestEveryModeRunsAScriptPerOrder: through TLS + ACL, Sentinel and Cluster, the client runs a
// Lua script over two keys of one order (one hash tag, one slot), as the services do.
func TestEveryModeRunsAScriptPerOrder(t *testing.T) {
	tests := []struct {
		name string
		env  func(t *testing.T) map[string]string
		want string
	}{
		{"single, TLS + ACL", func(t *testing.T) map[string]string {
			r := testenv.RedisTLS(t)
			return map[string]string{"REDIS_ADDR": r.Addr, "REDIS_TLS": "true", "REDIS_TLS_CA_FILE": r.CAFile,
				"REDIS_USERNAME": r.Username, "REDIS_PASSWORD": r.Password}
		}, "*redis.Client"},
		{"single, mutual TLS + ACL", func(t *testing.T) map[string]string {
			r := testenv.RedisTLS(t)
			return map[string]string{"REDIS_ADDR": r.Addr, "REDIS_TLS": "true", "REDIS_TLS_CA_FILE": r.CAFile,
				"REDIS_TLS_CERT_FILE": r.CertFile, "REDIS_TLS_KEY_FILE": r.KeyFile, "REDIS_USERNAME": r.Username, "REDIS_PASSWORD": r.Password}
		}, "*redis.Client"},
		{"sentinel", func(t *testing.T) map[string]string {
			s := testenv.RedisSentinel(t)
			return map[string]string{"REDIS_ADDR": strings.Join(s.Addrs, ","), "REDIS_MASTER_NAME": s.MasterName}
		}, "*redis.Client"},
		{"cluster", func(t *testing.T) map[string]string {
			return map[string]string{"REDIS_ADDR": strings.Join(testenv.RedisCluster(t), ","), "REDIS_CLUSTER": "true"}
		}, "*redis.ClusterClient"},
	}
	script := redis.NewScript(`redis.call("SET", KEYS[1], ARGV[1], "EX", 60); redis.call("SET", KEYS[2], ARGV[1], "EX", 60); return redis.call("GET", KEYS[1])`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rdb := client(t, tt.env(t))
			if got := fmt.Sprintf("%T", rdb); got != tt.want {
				t.Errorf("client type %s, want %s", got, tt.want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := c.Ping(ctx, rdb); err != nil {
				t.Fatal(err)
			}
			prefix := testenv.Name(t, "op")
			keys := []string{prefix + "{dianwoda:1}:a", prefix + "{dianwoda:1}:b"}
			got, err := script.Run(ctx, rdb, keys, "v").Text()
			if err != nil || got != "v" {
				t.Fatalf("script = %q, %v", got, err)
			}
			_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, keys[0]+"n")
				p.Incr(ctx, keys[1]+"n")
				return nil
			})
			if err != nil {
				t.Fatalf("MULTI over one order's keys: %v", err)
			}
		})
	}
}

// TestFailuresNameTheVariable: a wrong password, no TLS against a TLS server, a wrong CA and
// unreachable sentinels fail with the variable to check, never with the password.
func TestFailuresNameTheVariable(t *testing.T) {
	r := testenv.RedisTLS(t)
	const wrong = "wrong-redis-Pa55word"
	tlsEnv := func(m map[string]string) map[string]string {
		env := map[string]string{"REDIS_ADDR": r.Addr, "REDIS_TLS": "true", "REDIS_TLS_CA_FILE": r.CAFile, "REDIS_USERNAME": r.Username, "REDIS_PASSWORD": r.Password}
		for k, v := range m {
			env[k] = v
			if v == "" {
				delete(env, k)
			}
		}
		return env
	}
	kafkaWrongCA := os.Getenv("TEST_KAFKA_TLS_WRONG_CA_FILE")
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"wrong password", tlsEnv(map[string]string{"REDIS_PASSWORD": wrong}), "REDIS_USERNAME/REDIS_PASSWORD"},
		{"no credentials (default user off)", tlsEnv(map[string]string{"REDIS_USERNAME": "", "REDIS_PASSWORD": ""}), "REDIS_USERNAME/REDIS_PASSWORD"},
		{"no TLS", tlsEnv(map[string]string{"REDIS_TLS": "", "REDIS_TLS_CA_FILE": "", "REDIS_PASSWORD": wrong}), "REDIS_TLS"},
		{"unreachable sentinels", map[string]string{"REDIS_ADDR": "127.0.0.1:1,127.0.0.1:2", "REDIS_MASTER_NAME": "orderpipe"}, "REDIS_ADDR (sentinels)"},
	}
	if kafkaWrongCA != "" {
		tests = append(tests, struct {
			name string
			env  map[string]string
			want string
		}{"wrong CA", tlsEnv(map[string]string{"REDIS_TLS_CA_FILE": kafkaWrongCA, "REDIS_PASSWORD": wrong}), "REDIS_TLS_CA_FILE"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rdb := client(t, tt.env)
			core, logs := observer.New(zap.DebugLevel)
			log := zap.New(core)
			c.Log(log)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.Ping(ctx, rdb)
			if err == nil {
				t.Fatal("ping succeeded")
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not name %s: %v", tt.want, err)
			}
			log.Error("redis unreachable", zap.Error(err))
			texts := []string{err.Error()}
			for _, e := range logs.All() {
				texts = append(texts, e.Message, fmt.Sprint(e.ContextMap()))
			}
			for _, txt := range texts {
				if strings.Contains(txt, wrong) || strings.Contains(txt, r.Password) {
					t.Errorf("password in %q", txt)
				}
			}
		})
	}
}

// TestClientLogsAreRoutedAndBounded: go-redis's own lines (here: every unreachable Sentinel of
// every dial) reach the service's logger as warnings, and at most ClientLogsPerSecond of them
// a second, however many failures there are.
func TestClientLogsAreRoutedAndBounded(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	redisio.RouteClientLogs(zap.New(core))
	cfg, err := load(t, map[string]string{"REDIS_ADDR": "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", "REDIS_MASTER_NAME": "orderpipe"})
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := cfg.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	start := time.Now()
	for range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := rdb.Ping(ctx).Err(); err == nil {
			t.Fatal("ping through unreachable Sentinels succeeded")
		}
		cancel()
	}
	seconds := int(time.Since(start)/time.Second) + 1
	got := logs.FilterMessage("redis client").All()
	if len(got) == 0 {
		t.Fatalf("no go-redis line reached the logger (all lines: %d)", logs.Len())
	}
	if limit := redisio.ClientLogsPerSecond * (seconds + 1); len(got) > limit {
		t.Errorf("%d go-redis lines in %d s, want at most %d", len(got), seconds, limit)
	}
	t.Logf("%d go-redis lines logged in %d s", len(got), seconds)
	for _, e := range got {
		if e.Level != zap.WarnLevel || !strings.Contains(e.ContextMap()["detail"].(string), "127.0.0.1:") {
			t.Errorf("line %v %q %v", e.Level, e.Message, e.ContextMap())
		}
	}
}
