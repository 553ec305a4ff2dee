package testenv

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
)

// KafkaClusterEnv is the three-broker test Kafka (deploy/local/kafka-cluster.sh), started by
// `TEST_KAFKA_CLUSTER=1 deploy/local/testenv.sh ...` instead of the single broker: three KRaft
// nodes, each broker and controller (a 3-voter quorum survives one loss), replication factor 3
// and min.insync.replicas=2 by default. Nodes are numbered 1, 2, 3 (their node.id). Tests that
// stop a node must bring it back (Restart or SigCont) before they end.
type KafkaClusterEnv struct {
	t              testing.TB
	script         string
	port           string
	Brokers        []string // PLAINTEXT, node 1..3 in order
	SASLSSLBrokers []string // SASL_SSL (users and CA as in SecureKafka), node 1..3 in order
	down           *os.File // the lock takeDown holds while this test has a node down
}

// KafkaCluster returns the three-broker test Kafka. Without TEST_KAFKA_CLUSTER=1 the test skips
// (the cluster is not started by a plain `make test`); with it, a missing or unreachable cluster
// skips or fails like Kafka does.
func KafkaCluster(t testing.TB) *KafkaClusterEnv {
	t.Helper()
	if os.Getenv("TEST_KAFKA_CLUSTER") != "1" {
		t.Skip("needs the three-broker Kafka: TEST_KAFKA_CLUSTER=1 deploy/local/testenv.sh go test ...")
	}
	root := os.Getenv("ORDERPIPE_ROOT")
	if root == "" {
		unavailable(t, "the three-broker Kafka", "ORDERPIPE_ROOT")
	}
	brokers := Kafka(t)
	if len(brokers) != 3 {
		unavailable(t, "the three-broker Kafka (KAFKA_BROKERS lists "+strconv.Itoa(len(brokers))+")", "KAFKA_BROKERS")
	}
	_, port, _ := strings.Cut(brokers[0], ":")
	return &KafkaClusterEnv{t: t, script: filepath.Join(root, "deploy", "local", "kafka-cluster.sh"), port: port,
		Brokers: brokers, SASLSSLBrokers: list(os.Getenv("TEST_KAFKA_SASL_SSL_BROKERS"))}
}

// Kill9 kills node n with SIGKILL; its data stays for Restart. It waits while another test
// has a node down (takeDown).
func (c *KafkaClusterEnv) Kill9(n int) { c.t.Helper(); c.down1("kill9", n) }

// StopOne stops node n gracefully (controlled shutdown); its data stays for Restart. It waits
// while another test has a node down.
func (c *KafkaClusterEnv) StopOne(n int) { c.t.Helper(); c.down1("stop-one", n) }

// Restart starts the stopped or killed node n again and waits until it answers; it gives the
// node-down lock back once every partition is in sync again (inSync).
func (c *KafkaClusterEnv) Restart(n int) { c.t.Helper(); c.up1("restart", n) }

// SigStop freezes node n; SigCont resumes it. It waits while another test has a node down.
func (c *KafkaClusterEnv) SigStop(n int) { c.t.Helper(); c.down1("sigstop", n) }

// SigCont resumes node n after SigStop, as Restart does.
func (c *KafkaClusterEnv) SigCont(n int) { c.t.Helper(); c.up1("sigcont", n) }

// down1 takes the node-down lock, then runs kafka-cluster.sh's cmd on node n.
func (c *KafkaClusterEnv) down1(cmd string, n int) {
	c.t.Helper()
	c.takeDown()
	c.run(cmd, strconv.Itoa(n))
}

// up1 runs kafka-cluster.sh's cmd on node n, waits until every partition is in sync again, and
// gives the node-down lock back.
func (c *KafkaClusterEnv) up1(cmd string, n int) {
	c.t.Helper()
	c.run(cmd, strconv.Itoa(n))
	c.inSync()
	c.bringUp()
}

// takeDown waits until no other test has a node down, and takes the cluster's lock: a file lock,
// since the tests of other packages run in other processes. The cluster promises to lose
// nothing acknowledged with one broker lost (RF 3, min.insync.replicas 2), not two, so tests
// that each take one node down must not overlap. Restart and SigCont give it back once the
// node has caught up; a test process that dies gives it back with its file, and a test that ends
// without either (it failed on the way) gives it back after its own clean-ups, which bring the
// node back.
func (c *KafkaClusterEnv) takeDown() {
	c.t.Helper()
	if c.down != nil {
		return // this test already holds it
	}
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "orderpipe-kafka-cluster-"+c.port+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		c.t.Fatal(err)
	}
	c.down = f
	c.t.Cleanup(c.bringUp) // registered before the test's own Restart clean-up, so it runs after it
}

// inSync waits, up to 90 s, until every partition of every topic has all its replicas in sync:
// a node that answers again has not caught up yet, and the next test's node down would leave the
// partitions it follows below min.insync.replicas. Past 90 s it says so and goes on.
func (c *KafkaClusterEnv) inSync() {
	c.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		lagging, err := c.outOfSync()
		if err == nil && lagging == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Logf("partitions still out of sync 90 s after the node came back: %d (%v)", lagging, err)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// outOfSync counts the partitions whose in-sync replicas are fewer than their replicas.
func (c *KafkaClusterEnv) outOfSync() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := kafkaio.Plaintext(c.Brokers...).NewClientFor(10 * time.Second)
	defer client.Close()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{}) // every topic
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			if len(p.Isr) < len(p.Replicas) {
				n++
			}
		}
	}
	return n, nil
}

func (c *KafkaClusterEnv) bringUp() {
	if c.down != nil {
		c.down.Close() // releases the lock
		c.down = nil
	}
}

// LeaderCounts returns how many partitions (of every topic) each node leads.
func (c *KafkaClusterEnv) LeaderCounts() map[int]int {
	c.t.Helper()
	counts := map[int]int{}
	sc := bufio.NewScanner(strings.NewReader(c.run("leader-counts")))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		n, _ := strconv.Atoi(f[0])
		k, _ := strconv.Atoi(f[1])
		counts[n] = k
	}
	return counts
}

// Controller returns the node id of the active controller (the quorum leader).
func (c *KafkaClusterEnv) Controller() int {
	c.t.Helper()
	out := strings.TrimSpace(c.run("controller"))
	n, err := strconv.Atoi(out)
	if err != nil {
		c.t.Fatalf("kafka-cluster.sh controller: %q", out)
	}
	return n
}

func (c *KafkaClusterEnv) run(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.script, args...)
	cmd.Env = append(os.Environ(), "KAFKA_CLUSTER_PORT="+c.port)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("kafka-cluster.sh %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
