package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisServer is a redis-server of one test's own (on a free port, no persistence), for tests
// that restart or flush Redis under load. Never restart or flush the shared test Redis.
type RedisServer struct {
	t    testing.TB
	port int
	dir  string
	Addr string
}

// OwnRedis starts a redis-server for this test and stops it when the test ends. It needs
// redis-server on PATH (`make test` installs it); without it the test skips, or fails under CI=true.
func OwnRedis(t testing.TB) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		unavailable(t, "redis-server", "PATH")
	}
	port := FreeLowPorts(t, 1) // below the ephemeral range: it is stopped and started again
	r := &RedisServer{t: t, port: port, dir: t.TempDir(), Addr: "127.0.0.1:" + strconv.Itoa(port)}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start starts the server (again) on the same port, empty, and waits until it answers.
func (r *RedisServer) Start() {
	r.t.Helper()
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port),
		"--save", "", "--appendonly", "no", "--daemonize", "yes", "--dir", r.dir,
		"--pidfile", r.dir+"/redis.pid", "--logfile", r.dir+"/redis.log")
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("redis-server: %v\n%s", err, out)
	}
	for range 100 {
		if r.Command("PING") == "PONG" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(r.dir + "/redis.log")
	r.t.Fatalf("redis on %s did not answer:\n%s", r.Addr, log)
}

// Stop shuts the server down without saving (its data is gone, as after a crash of a cache node).
func (r *RedisServer) Stop() {
	_ = exec.Command("redis-cli", "-p", strconv.Itoa(r.port), "shutdown", "nosave").Run()
	for range 100 {
		if c, err := net.DialTimeout("tcp", r.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			time.Sleep(50 * time.Millisecond)
			continue
		}
		return
	}
}

// Command runs a redis-cli command and returns its trimmed output ("" on error).
func (r *RedisServer) Command(args ...string) string {
	out, err := exec.Command("redis-cli", append([]string{"-p", strconv.Itoa(r.port)}, args...)...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// String names the server for messages.
func (r *RedisServer) String() string { return fmt.Sprintf("redis %s", r.Addr) }
