package topo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// redisNode is one redis-server (or sentinel) process of the test's own.
type redisNode struct {
	name string
	port int
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	dir  string
}

func needRedis(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "redis-server is not on PATH (apt-get install redis-server)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

func (n *redisNode) start(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		t.Fatalf("%s already runs", n.name)
	}
	log, err := os.OpenFile(filepath.Join(n.dir, n.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", n.args...)
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", n.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	n.cmd, n.done = cmd, done
	for range 200 {
		if cli(n.port, "PING") == "PONG" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(n.dir, n.name+".log"))
	t.Fatalf("%s on port %d did not answer:\n%s", n.name, n.port, tail(b, 2000))
}

func (n *redisNode) kill9() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

func (n *redisNode) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

func cli(port int, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port)}, args...)...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// SentinelDownAfter is the Sentinels' down-after-milliseconds. It must stay well above one second,
// Sentinel's fixed ping period: after a failover each Sentinel opens a new link to the new primary
// up to a second late (its reconnect timer still runs from the dead primary) and counts the time
// to the first PONG from the switch. With 1000 ms, about one switch in ten marked the new primary
// down for ~100 ms; together with the other Sentinels' "down" votes, still valid for 5 s from the
// failover just done, that made a quorum and a second failover back to the old primary, restarted
// empty a second earlier, and the new primary replicated the empty data set (make test in CI:
// "old primary … did not come back as a replica", role:master; reproduced by TestSentinelFailoverLoop).
const SentinelDownAfter = 3 * time.Second

// SentinelGroup is a Redis primary, one replica and three sentinels (quorum 2) watching them,
// without persistence (a cache node that restarts comes back empty).
type SentinelGroup struct {
	t          testing.TB
	MasterName string
	// Sentinels are the sentinels' addresses (what REDIS_ADDR lists with REDIS_MASTER_NAME).
	Sentinels []string
	data      []*redisNode // the two data nodes; which one is primary changes on failover
	sentinels []*redisNode
}

// StartSentinel starts the group and waits until the sentinels agree on the primary.
func StartSentinel(t testing.TB) *SentinelGroup {
	t.Helper()
	needRedis(t)
	dir := t.TempDir()
	base := testenv.FreeLowPorts(t, 5)
	g := &SentinelGroup{t: t, MasterName: "topomaster"}
	for i := range 2 {
		port := base + i
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--dbfilename", "d" + strconv.Itoa(port) + ".rdb", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}
		if i == 1 {
			args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(base))
		}
		g.data = append(g.data, &redisNode{name: "redis-" + strconv.Itoa(port), port: port, args: args, dir: dir})
	}
	for i := range 3 {
		port := base + 2 + i
		conf := filepath.Join(dir, "sentinel-"+strconv.Itoa(port)+".conf")
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %s %d\nsentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 1\n",
			port, dir, g.MasterName, base, g.MasterName, SentinelDownAfter.Milliseconds(), g.MasterName, g.MasterName)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		g.sentinels = append(g.sentinels, &redisNode{name: "sentinel-" + strconv.Itoa(port), port: port, args: []string{conf, "--sentinel"}, dir: dir})
		g.Sentinels = append(g.Sentinels, "127.0.0.1:"+strconv.Itoa(port))
	}
	t.Cleanup(func() {
		for _, n := range append(append([]*redisNode{}, g.sentinels...), g.data...) {
			n.kill9()
		}
	})
	for _, n := range append(append([]*redisNode{}, g.data...), g.sentinels...) {
		n.start(t)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if g.Primary() == "127.0.0.1:"+strconv.Itoa(base) && strings.Contains(cli(base, "INFO", "replication"), "connected_slaves:1") {
			return g
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("sentinel group did not settle: primary %q, %s", g.Primary(), cli(base, "INFO", "replication"))
	return nil
}

// Primary is the primary's address as the first answering sentinel sees it.
func (g *SentinelGroup) Primary() string {
	for _, s := range g.sentinels {
		out := cli(s.port, "SENTINEL", "get-master-addr-by-name", g.MasterName)
		if f := strings.Fields(out); len(f) == 2 {
			return f[0] + ":" + f[1]
		}
	}
	return ""
}

func (g *SentinelGroup) nodeAt(addr string) *redisNode {
	for _, n := range g.data {
		if "127.0.0.1:"+strconv.Itoa(n.port) == addr {
			return n
		}
	}
	return nil
}

// FailPrimary kills the primary with SIGKILL, waits until the sentinels promoted the replica,
// then starts the old primary again (empty) and waits until it is a replica of the new one.
// It returns the old and new primary's addresses and how long the promotion took.
func (g *SentinelGroup) FailPrimary(ctx context.Context, down time.Duration) (oldP, newP string, promoted time.Duration, err error) {
	oldP = g.Primary()
	since := g.logSizes()
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\nthe Sentinels' events since the kill:\n%s", err, g.eventsSince(since))
		}
	}()
	n := g.nodeAt(oldP)
	if n == nil {
		return oldP, "", 0, fmt.Errorf("primary %q is not one of the group's nodes", oldP)
	}
	t0 := time.Now()
	n.kill9()
	for {
		if p := g.Primary(); p != "" && p != oldP {
			newP, promoted = p, time.Since(t0)
			break
		}
		if time.Since(t0) > 30*time.Second {
			return oldP, "", 0, fmt.Errorf("no failover within 30s of killing %s", oldP)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-ctx.Done():
	case <-time.After(down):
	}
	n.start(g.t)
	for time.Since(t0) < 60*time.Second {
		info := cli(n.port, "INFO", "replication")
		if strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") {
			return oldP, newP, promoted, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return oldP, newP, promoted, fmt.Errorf("old primary %s did not come back as a replica: %s", oldP, cli(n.port, "INFO", "replication"))
}

// logSizes returns the length of each Sentinel's log, to read later what it logged after now.
func (g *SentinelGroup) logSizes() []int64 {
	out := make([]int64, len(g.sentinels))
	for i, s := range g.sentinels {
		if fi, err := os.Stat(filepath.Join(s.dir, s.name+".log")); err == nil {
			out[i] = fi.Size()
		}
	}
	return out
}

// eventsSince returns the warning-level events (failovers, votes, up and down) each Sentinel
// logged after logSizes returned since, one line each, prefixed with the Sentinel's name.
func (g *SentinelGroup) eventsSince(since []int64) string {
	var b strings.Builder
	for i, s := range g.sentinels {
		data, err := os.ReadFile(filepath.Join(s.dir, s.name+".log"))
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", s.name, err)
			continue
		}
		if since[i] <= int64(len(data)) {
			data = data[since[i]:]
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, " # ") {
				fmt.Fprintf(&b, "%s: %s\n", s.name, line)
			}
		}
	}
	return b.String()
}

// Pids returns the data nodes' process ids.
func (g *SentinelGroup) Pids() map[string]int {
	out := map[string]int{}
	for _, n := range g.data {
		if p := n.pid(); p != 0 {
			out[n.name] = p
		}
	}
	return out
}

// RedisCluster is a Redis Cluster of three primaries, each with one replica.
type RedisCluster struct {
	t     testing.TB
	Addrs []string
	nodes []*redisNode
}

// StartRedisCluster starts six nodes and joins them (redis-cli --cluster create).
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	needRedis(t)
	dir := t.TempDir()
	// Six nodes and their cluster bus ports, all below the ephemeral range: the default bus port
	// (port + 10000) lands in it, where a client's outgoing connection can hold it ("Failed
	// listening on port … (cluster)", seen in make test).
	base := testenv.FreeLowPorts(t, 12)
	c := &RedisCluster{t: t}
	for i := range 6 {
		port := base + i
		c.nodes = append(c.nodes, &redisNode{name: "cluster-" + strconv.Itoa(port), port: port, dir: dir, args: []string{
			"--port", strconv.Itoa(port), "--cluster-port", strconv.Itoa(base + 6 + i),
			"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes-" + strconv.Itoa(port) + ".conf", "--cluster-node-timeout", "1000",
			"--dbfilename", "c" + strconv.Itoa(port) + ".rdb", "--dir", dir, "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}})
		c.Addrs = append(c.Addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.kill9()
		}
	})
	for _, n := range c.nodes {
		n.start(t)
	}
	out, err := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, c.Addrs...), "--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(cli(base, "CLUSTER", "INFO"), "cluster_state:ok") && len(c.Primaries()) == 3 {
			return c
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("redis cluster not ok: %s", cli(base, "CLUSTER", "INFO"))
	return nil
}

// Primaries lists the ports of the primaries that are connected.
func (c *RedisCluster) Primaries() []int {
	var out []int
	for _, n := range c.nodes {
		if n.pid() == 0 {
			continue
		}
		for _, line := range strings.Split(cli(n.port, "CLUSTER", "NODES"), "\n") {
			f := strings.Fields(line)
			if len(f) >= 8 && strings.Contains(f[2], "myself") && strings.Contains(f[2], "master") {
				out = append(out, n.port)
			}
		}
	}
	return out
}

// FailPrimary kills one primary with SIGKILL, waits until its replica took over and the cluster
// is ok again, then starts the killed node again (it rejoins as a replica).
func (c *RedisCluster) FailPrimary(ctx context.Context, down time.Duration) (killed string, promoted time.Duration, err error) {
	ps := c.Primaries()
	if len(ps) == 0 {
		return "", 0, fmt.Errorf("no primary")
	}
	var n *redisNode
	for _, x := range c.nodes {
		if x.port == ps[0] {
			n = x
		}
	}
	var other *redisNode
	for _, x := range c.nodes {
		if x != n && x.pid() != 0 {
			other = x
			break
		}
	}
	t0 := time.Now()
	n.kill9()
	for {
		if strings.Contains(cli(other.port, "CLUSTER", "INFO"), "cluster_state:ok") && len(c.Primaries()) == 3 {
			promoted = time.Since(t0)
			break
		}
		if time.Since(t0) > 30*time.Second {
			return "", 0, fmt.Errorf("no cluster failover within 30s of killing %d", n.port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-ctx.Done():
	case <-time.After(down):
	}
	n.start(c.t)
	for time.Since(t0) < 60*time.Second {
		info := cli(n.port, "INFO", "replication")
		if strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") {
			return "127.0.0.1:" + strconv.Itoa(n.port), promoted, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "127.0.0.1:" + strconv.Itoa(n.port), promoted, fmt.Errorf("killed node did not rejoin as a replica")
}

// Pids returns the nodes' process ids.
func (c *RedisCluster) Pids() map[string]int {
	out := map[string]int{}
	for _, n := range c.nodes {
		if p := n.pid(); p != 0 {
			out[n.name] = p
		}
	}
	return out
}
