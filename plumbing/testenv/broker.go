package testenv

import (
	"context"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
)

// Broker is a Kafka broker of one test's own (deploy/local/kafka.sh on free ports, its data in
// t.TempDir()), for tests that stop and restart the broker. Never stop the shared test broker.
type Broker struct {
	t       testing.TB
	script  string
	port    int
	runDir  string
	Brokers []string
}

// OwnKafka starts a broker for this test (about 7 s) and stops it when the test ends. It needs
// ORDERPIPE_ROOT (set by `make test`); without it the test skips, or fails under CI=true.
func OwnKafka(t testing.TB) *Broker {
	t.Helper()
	root := os.Getenv("ORDERPIPE_ROOT")
	if root == "" {
		unavailable(t, "a Kafka of the test's own", "ORDERPIPE_ROOT")
	}
	b := &Broker{t: t, script: filepath.Join(root, "deploy", "local", "kafka.sh"), port: freePortPair(t), runDir: t.TempDir()}
	b.Brokers = []string{"127.0.0.1:" + strconv.Itoa(b.port)}
	b.do("start")
	t.Cleanup(func() { b.do("stop") })
	return b
}

// Stop stops the broker (SIGTERM, then SIGKILL after 15 s); its data stays for Restart.
func (b *Broker) Stop() { b.t.Helper(); b.do("stop") }

// Restart starts the stopped broker again on the same port and data, and waits until it answers.
func (b *Broker) Restart() {
	b.t.Helper()
	b.do("restart")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		attempt, done := context.WithTimeout(ctx, 3*time.Second)
		err := kafkaio.Ping(attempt, b.Brokers)
		done()
		if err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.t.Fatalf("kafka on %v did not answer after restart", b.Brokers)
}

func (b *Broker) do(cmd string) {
	b.t.Helper()
	c := exec.Command(b.script, cmd)
	c.Env = append(os.Environ(),
		"KAFKA_PORT="+strconv.Itoa(b.port),
		"KAFKA_CONTROLLER_PORT="+strconv.Itoa(b.port+1),
		"KAFKA_RUN_DIR="+b.runDir)
	out, err := c.CombinedOutput()
	if err != nil {
		b.t.Fatalf("kafka.sh %s: %v\n%s", cmd, err, out)
	}
}

// freePortPair returns a port p such that p and p+1 were both free a moment ago. It picks below
// Linux's ephemeral range (32768+), where an outgoing connection of another process could take
// the port between this check and the broker's bind.
func freePortPair(t testing.TB) int {
	t.Helper()
	for range 100 {
		p := 20000 + mrand.IntN(12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no two adjacent free ports")
	return 0
}
