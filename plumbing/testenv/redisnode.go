package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// RedisNodeDo runs one fault on one Redis node that deploy/local/testenv.sh started (a Sentinel
// group's primary, replica or Sentinel, or a Cluster node), by its address: op is kill9 (a crash:
// its data is gone, its config stays), restart (start it again from its config and wait until it
// answers), stop, sigstop or sigcont (deploy/local/redis.sh). A test that stops a node must bring
// it back before it ends. It needs ORDERPIPE_ROOT (set by `make test`).
func RedisNodeDo(t testing.TB, op, addr string) {
	t.Helper()
	root := os.Getenv("ORDERPIPE_ROOT")
	if root == "" {
		unavailable(t, "the test Redis nodes' script", "ORDERPIPE_ROOT")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("redis node address %q: %v", addr, err)
	}
	cmd := exec.Command(filepath.Join(root, "deploy", "local", "redis.sh"), op, port)
	cmd.Env = withoutRunDir(os.Environ())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("redis.sh %s %s: %v\n%s", op, port, err, out)
	}
}

// withoutRunDir drops REDIS_RUN_DIR, so redis.sh finds the node's run dir from its port.
func withoutRunDir(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, "REDIS_RUN_DIR=") {
			out = append(out, e)
		}
	}
	return out
}

// SentinelGroup is a Redis Sentinel group of one test's own (deploy/local/redis-sentinel.sh on
// free ports below the ephemeral range), for tests that fail its primary over.
type SentinelGroup struct {
	RedisSentinelEnv
	Primary string // the first primary (it changes on a failover; ask the Sentinels)
	Replica string // the first replica
}

// OwnSentinelGroup starts a primary, a replica and three Sentinels (quorum 2, down after 3 s)
// for this test and stops them when it ends. It needs ORDERPIPE_ROOT (set by `make test`).
func OwnSentinelGroup(t testing.TB) *SentinelGroup {
	t.Helper()
	port := FreeLowPorts(t, 5)
	script := ownScript(t, "redis-sentinel.sh")
	runScript(t, script, "start", port)
	t.Cleanup(func() { runScript(t, script, "stop", port) })
	g := &SentinelGroup{RedisSentinelEnv: RedisSentinelEnv{MasterName: "orderpipe"}, Primary: addrOf(port), Replica: addrOf(port + 1)}
	for i := 2; i <= 4; i++ {
		g.Addrs = append(g.Addrs, addrOf(port+i))
	}
	return g
}

// OwnRedisCluster starts a Redis Cluster of three primaries with a replica each for this test
// (deploy/local/redis-cluster.sh on free ports below the ephemeral range) and stops it when the
// test ends. It returns the primaries; the replicas are on the next three ports.
func OwnRedisCluster(t testing.TB) []string {
	t.Helper()
	port := FreeLowPorts(t, 12) // six nodes and their cluster bus ports
	script := ownScript(t, "redis-cluster.sh")
	runScript(t, script, "start", port)
	t.Cleanup(func() { runScript(t, script, "stop", port) })
	return []string{addrOf(port), addrOf(port + 1), addrOf(port + 2)}
}

func ownScript(t testing.TB, name string) string {
	t.Helper()
	root := os.Getenv("ORDERPIPE_ROOT")
	if root == "" {
		unavailable(t, "Redis nodes of the test's own", "ORDERPIPE_ROOT")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		unavailable(t, "redis-server", "PATH")
	}
	return filepath.Join(root, "deploy", "local", name)
}

func runScript(t testing.TB, script, op string, port int) {
	t.Helper()
	cmd := exec.Command(script, op, strconv.Itoa(port))
	cmd.Env = withoutRunDir(os.Environ())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s %d: %v\n%s", filepath.Base(script), op, port, err, out)
	}
}

func addrOf(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
