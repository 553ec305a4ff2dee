// Package topo starts, as local processes of one test's own, the production topology the
// reliability proof runs on (a three-node Kafka cluster, a Redis Sentinel group, a Redis Cluster)
// and injects faults into it: kill -9, graceful stop, SIGSTOP/SIGCONT of one node. Every fault
// touches only the test's own servers, never the shared ones of `make test`.
package topo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// KafkaVersion is the Kafka release of deploy/local/kafka.sh (its jars are cached in .cache).
const KafkaVersion = "4.1.1"

// ReplicaLagTime is the cluster's replica.lag.time.max.ms: a follower that has not caught up for
// this long leaves the ISR. Small, so that a frozen broker leaves it within a short test.
const ReplicaLagTime = 6 * time.Second

// KafkaCluster is three KRaft nodes, each broker and controller (a controller quorum of three),
// on 127.0.0.1: RF 3 and min.insync.replicas=2 by default, unclean leader election off.
//
// Clients use the SASL_SSL listeners (SCRAM-SHA-512, one user, the server certificate signed by a
// throw-away CA from deploy/local/certs.sh): Env gives the services' KAFKA_* variables and Conn
// the test's own connection built from the same variables. Inter-broker and controller traffic,
// and the fault injector's metadata requests, stay on PLAINTEXT.
type KafkaCluster struct {
	t       testing.TB
	root    string
	dir     string
	Brokers []string // PLAINTEXT listeners
	// SASLBrokers are the SASL_SSL listeners, node 1..3 in order.
	SASLBrokers []string
	certs       string
	user, pass  string
	nodes       []*kafkaNode
}

type kafkaNode struct {
	id, port, cport, sport int
	dir                    string
	mu                     sync.Mutex
	cmd                    *exec.Cmd
	done                   chan struct{}
	starts                 int
	frozen                 bool
}

// StartKafkaCluster formats and starts the three nodes and waits until the cluster creates a
// topic with RF 3. It needs ORDERPIPE_ROOT (set by deploy/local/testenv.sh) and the cached jars;
// without them the test skips, or fails under CI=true.
func StartKafkaCluster(t testing.TB) *KafkaCluster {
	t.Helper()
	root := os.Getenv("ORDERPIPE_ROOT")
	libs := filepath.Join(root, ".cache", "kafka", KafkaVersion, "libs")
	if _, err := os.Stat(filepath.Join(libs, ".complete")); root == "" || err != nil {
		msg := "a Kafka cluster of the test's own needs ORDERPIPE_ROOT and the Kafka jars (deploy/local/kafka.sh fetch); run under deploy/local/testenv.sh"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t0 := time.Now()
	c := &KafkaCluster{t: t, root: root, dir: t.TempDir()}
	c.certs, c.user = filepath.Join(c.dir, "certs"), "orderpipe"
	var pw [12]byte
	_, _ = rand.Read(pw[:])
	c.pass = base64.RawURLEncoding.EncodeToString(pw[:])
	if out, err := exec.Command(filepath.Join(root, "deploy", "local", "certs.sh"), c.certs).CombinedOutput(); err != nil {
		t.Fatalf("certs.sh: %v\n%s", err, out)
	}
	base := testenv.FreeLowPorts(t, 9)
	var voters []string
	for i := range 3 {
		n := &kafkaNode{id: i + 1, port: base + 3*i, cport: base + 3*i + 1, sport: base + 3*i + 2, dir: filepath.Join(c.dir, "node"+strconv.Itoa(i+1))}
		c.nodes = append(c.nodes, n)
		c.Brokers = append(c.Brokers, "127.0.0.1:"+strconv.Itoa(n.port))
		c.SASLBrokers = append(c.SASLBrokers, "127.0.0.1:"+strconv.Itoa(n.sport))
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", n.id, n.cport))
	}
	clusterID := "orderpipeTopoTest0000A" // 22 characters of base64: a valid cluster id
	for _, n := range c.nodes {
		if err := os.MkdirAll(filepath.Join(n.dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		props := fmt.Sprintf(`process.roles=broker,controller
node.id=%d
controller.quorum.voters=%s
listeners=PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d
advertised.listeners=PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=%s
ssl.truststore.type=PEM
ssl.truststore.location=%s
ssl.client.auth=none
inter.broker.listener.name=PLAINTEXT
log.dirs=%s
num.partitions=6
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
replica.lag.time.max.ms=%d
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=4000
controlled.shutdown.enable=true
log.flush.interval.messages=9223372036854775807
`, n.id, strings.Join(voters, ","), n.port, n.sport, n.cport, n.port, n.sport, filepath.Join(c.certs, "server.pem"), filepath.Join(c.certs, "ca.crt"),
			filepath.Join(n.dir, "data"), ReplicaLagTime.Milliseconds())
		if err := os.WriteFile(filepath.Join(n.dir, "server.properties"), []byte(props), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Formatting is a JVM start (10–20 s on this machine): node 1 is formatted, the others get
	// a copy of its storage with their own node.id and directory.id.
	first := c.nodes[0]
	// The SCRAM user is written into the bootstrap metadata (kafka-storage format --add-scram).
	out, err := c.java("kafka.tools.StorageTool", "format", "-t", clusterID, "-c", filepath.Join(first.dir, "server.properties"),
		"--add-scram", "SCRAM-SHA-512=[name="+c.user+",password="+c.pass+"]").CombinedOutput()
	if err != nil {
		t.Fatalf("format node 1: %v\n%s", err, out)
	}
	for _, n := range c.nodes[1:] {
		if err := copyStorage(filepath.Join(first.dir, "data"), filepath.Join(n.dir, "data"), n.id); err != nil {
			t.Fatalf("storage of node %d: %v", n.id, err)
		}
	}
	t.Cleanup(c.stopAll)
	if err := os.WriteFile(filepath.Join(c.dir, "log4j2.properties"), []byte(log4j), 0o644); err != nil {
		t.Fatal(err)
	}
	formatted := time.Now()
	for _, n := range c.nodes {
		c.launch(n)
	}
	for i := range c.nodes {
		c.WaitUp(i + 1)
	}
	t.Logf("kafka cluster: formatted in %s, nodes up after %s more", formatted.Sub(t0).Round(time.Millisecond), time.Since(formatted).Round(time.Millisecond))
	// The cluster is usable when a topic with RF 3 can be created (all three registered).
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		err := c.Conn().EnsureTopics(ctx, kafkaio.TopicSpec{Name: "topo.ready", Partitions: 1, ReplicationFactor: 3})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("kafka cluster not usable: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	return c
}

// copyStorage copies a freshly formatted log dir (meta.properties, bootstrap.checkpoint) from
// src to dst, giving it node id and a directory.id of its own.
func copyStorage(src, dst string, id int) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if d.Name() == "meta.properties" {
			var dirID [16]byte
			_, _ = rand.Read(dirID[:])
			lines := strings.Split(string(b), "\n")
			for i, l := range lines {
				switch {
				case strings.HasPrefix(l, "node.id="):
					lines[i] = "node.id=" + strconv.Itoa(id)
				case strings.HasPrefix(l, "directory.id="):
					lines[i] = "directory.id=" + base64.RawURLEncoding.EncodeToString(dirID[:])
				}
			}
			b = []byte(strings.Join(lines, "\n"))
		}
		return os.WriteFile(target, b, 0o644)
	})
}

func (c *KafkaCluster) java(args ...string) *exec.Cmd {
	libs := filepath.Join(c.root, ".cache", "kafka", KafkaVersion, "libs")
	return exec.Command("java", append([]string{"-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(c.root, "deploy", "local", "kafka", "log4j2.properties"),
		"-cp", libs + "/*"}, args...)...)
}

func (c *KafkaCluster) node(id int) *kafkaNode {
	if id < 1 || id > len(c.nodes) {
		c.t.Fatalf("no kafka node %d", id)
	}
	return c.nodes[id-1]
}

func (c *KafkaCluster) launch(n *kafkaNode) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		c.t.Fatalf("kafka node %d already runs", n.id)
	}
	log, err := os.OpenFile(filepath.Join(n.dir, "broker.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	libs := filepath.Join(c.root, ".cache", "kafka", KafkaVersion, "libs")
	cmd := exec.Command("java", "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile="+filepath.Join(c.dir, "log4j2.properties"),
		"-Dkafka.logs.dir="+n.dir, "-cp", libs+"/*", "kafka.Kafka", filepath.Join(n.dir, "server.properties"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		c.t.Fatalf("start kafka node %d: %v", n.id, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	n.cmd, n.done = cmd, done
	n.starts++
}

var started = regexp.MustCompile(`Kafka Server started|\[KafkaRaftServer nodeId=\d+\] Kafka Server started`)

// WaitUp waits until node id logged its start (once per launch) and answers metadata.
func (c *KafkaCluster) WaitUp(id int) {
	c.t.Helper()
	n := c.node(id)
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(n.dir, "broker.log"))
		n.mu.Lock()
		want, done := n.starts, n.done
		n.mu.Unlock()
		if len(started.FindAllIndex(b, -1)) >= want {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := kafkaio.Plaintext("127.0.0.1:" + strconv.Itoa(n.port)).Ping(ctx)
			cancel()
			if err == nil {
				return
			}
		}
		select {
		case <-done:
			c.t.Fatalf("kafka node %d exited at start:\n%s", id, tail(b, 3000))
		case <-time.After(250 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(filepath.Join(n.dir, "broker.log"))
	c.t.Fatalf("kafka node %d did not start:\n%s", id, tail(b, 3000))
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (c *KafkaCluster) signal(id int, sig syscall.Signal, wait time.Duration) error {
	n := c.node(id)
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		n.cmd = nil
	}
	n.frozen = sig == syscall.SIGSTOP
	n.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("kafka node %d is not running", id)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal kafka node %d: %w", id, err)
	}
	if wait == 0 {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("kafka node %d did not stop within %s and was killed", id, wait)
	}
}

// Kill9 kills node id with SIGKILL (its data stays for Restart).
func (c *KafkaCluster) Kill9(id int) error { return c.signal(id, syscall.SIGKILL, 30*time.Second) }

// Stop stops node id gracefully (SIGTERM: controlled shutdown moves its leaderships first).
func (c *KafkaCluster) Stop(id int) error { return c.signal(id, syscall.SIGTERM, 60*time.Second) }

// Freeze sends SIGSTOP to node id; Thaw sends SIGCONT.
func (c *KafkaCluster) Freeze(id int) error { return c.signal(id, syscall.SIGSTOP, 0) }

// Thaw resumes a frozen node.
func (c *KafkaCluster) Thaw(id int) error { return c.signal(id, syscall.SIGCONT, 0) }

// Restart starts the stopped node id again on its data and waits until it answers.
func (c *KafkaCluster) Restart(id int) {
	c.t.Helper()
	c.launch(c.node(id))
	c.WaitUp(id)
}

// Pids returns the process ids of the running nodes.
func (c *KafkaCluster) Pids() map[string]int {
	out := map[string]int{}
	for _, n := range c.nodes {
		n.mu.Lock()
		if n.cmd != nil {
			out["kafka-"+strconv.Itoa(n.id)] = n.cmd.Process.Pid
		}
		n.mu.Unlock()
	}
	return out
}

func (c *KafkaCluster) stopAll() {
	for _, n := range c.nodes {
		n.mu.Lock()
		cmd, done := n.cmd, n.done
		n.cmd = nil
		n.mu.Unlock()
		if cmd == nil {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-done
	}
}

// LeaderCounts returns, per node id, how many partitions of topics it leads.
func (c *KafkaCluster) LeaderCounts(ctx context.Context, topics []string) (map[int]int, error) {
	client := kafkaio.Plaintext(c.alive()...).NewClient(5 * time.Second)
	defer client.Close()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	out := map[int]int{}
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			out[p.Leader.ID]++
		}
	}
	return out, nil
}

// MostLeader is the node leading the most partitions of topics.
func (c *KafkaCluster) MostLeader(ctx context.Context, topics []string) (int, map[int]int, error) {
	counts, err := c.LeaderCounts(ctx, topics)
	if err != nil {
		return 0, nil, err
	}
	best := 0
	for id, n := range counts {
		if best == 0 || n > counts[best] || (n == counts[best] && id < best) {
			best = id
		}
	}
	if best == 0 {
		return 0, counts, errors.New("no leaders")
	}
	return best, counts, nil
}

// log4j is the nodes' logging: warnings, the start-up line, and the Raft quorum's state
// transitions (which node is the active controller, from its "transition to Leader" line).
const log4j = `status = error
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = STDOUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
logger.kafka.name = kafka.server.KafkaBroker
logger.kafka.level = INFO
logger.quorum.name = org.apache.kafka.raft.QuorumState
logger.quorum.level = INFO
`

var (
	becameLeader = regexp.MustCompile(`\[RaftManager id=(\d+)\] Completed transition to Leader\(.*?[ (]epoch=(\d+)`)
	follows      = regexp.MustCompile(`Completed transition to FollowerState\(.*?[ (]epoch=(\d+), leader=(\d+)`)
)

// ActiveController is the leader of the controller quorum in the highest Raft epoch any node
// logged (a node's own "transition to Leader", or a follower's "leader=N"). Asking the quorum
// with kafka-metadata-quorum would take a JVM start (over 10 s on this machine).
func (c *KafkaCluster) ActiveController() (int, error) {
	best, bestEpoch := 0, -1
	for _, n := range c.nodes {
		b, err := os.ReadFile(filepath.Join(n.dir, "broker.log"))
		if err != nil {
			continue
		}
		for _, m := range becameLeader.FindAllSubmatch(b, -1) {
			id, _ := strconv.Atoi(string(m[1]))
			if epoch, _ := strconv.Atoi(string(m[2])); epoch > bestEpoch {
				best, bestEpoch = id, epoch
			}
		}
		for _, m := range follows.FindAllSubmatch(b, -1) {
			id, _ := strconv.Atoi(string(m[2]))
			if epoch, _ := strconv.Atoi(string(m[1])); epoch > bestEpoch {
				best, bestEpoch = id, epoch
			}
		}
	}
	if best == 0 {
		return 0, errors.New("no node logged a quorum leader")
	}
	return best, nil
}

// Env is the services' Kafka variables: the SASL_SSL listeners, the test CA, SCRAM-SHA-512.
func (c *KafkaCluster) Env() []string {
	return []string{"KAFKA_BROKERS=" + strings.Join(c.SASLBrokers, ","), "KAFKA_TLS=true", "KAFKA_TLS_CA_FILE=" + filepath.Join(c.certs, "ca.crt"),
		"KAFKA_SASL_MECHANISM=scram-sha-512", "KAFKA_SASL_USERNAME=" + c.user, "KAFKA_SASL_PASSWORD=" + c.pass}
}

// Conn is the test's own connection to the cluster, built from Env as the services build theirs.
func (c *KafkaCluster) Conn() kafkaio.Conn {
	env := map[string]string{}
	for _, kv := range c.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	l := envconfig.New(func(k string) string { return env[k] })
	conn := kafkaio.LoadConn(l)
	if err := l.Err(); err != nil {
		c.t.Fatalf("kafka connection of the test: %v", err)
	}
	return conn
}

// PlainConn is a PLAINTEXT connection (the fault injector's metadata requests).
func (c *KafkaCluster) PlainConn() kafkaio.Conn { return kafkaio.Plaintext(c.Brokers...) }

// alive lists the brokers of the running nodes that are not frozen.
func (c *KafkaCluster) alive() []string {
	var out []string
	for _, n := range c.nodes {
		n.mu.Lock()
		if n.cmd != nil && !n.frozen {
			out = append(out, "127.0.0.1:"+strconv.Itoa(n.port))
		}
		n.mu.Unlock()
	}
	if len(out) == 0 {
		return c.Brokers
	}
	return out
}

// Partitions describes the partitions of topic as "p<id>:leader<id>/isr<ids>".
func (c *KafkaCluster) Partitions(ctx context.Context, topic string) (string, error) {
	client := kafkaio.Plaintext(c.alive()...).NewClient(5 * time.Second)
	defer client.Close()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return "", fmt.Errorf("metadata: %w", err)
	}
	var parts []string
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			var isr []string
			for _, b := range p.Isr {
				isr = append(isr, strconv.Itoa(b.ID))
			}
			parts = append(parts, fmt.Sprintf("p%d:leader%d/isr%s", p.ID, p.Leader.ID, strings.Join(isr, ",")))
		}
	}
	return strings.Join(parts, " "), nil
}

// InSync returns, per partition of topic, the number of in-sync replicas.
func (c *KafkaCluster) InSync(ctx context.Context, topic string) (map[int]int, error) {
	client := kafkaio.Plaintext(c.alive()...).NewClient(5 * time.Second)
	defer client.Close()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	out := map[int]int{}
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			out[p.ID] = len(p.Isr)
		}
	}
	return out, nil
}

// DeleteTopic deletes topic.
func (c *KafkaCluster) DeleteTopic(ctx context.Context, topic string) error {
	client := kafkaio.Plaintext(c.alive()...).NewClient(10 * time.Second)
	defer client.Close()
	res, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("delete topic %s: %w", topic, err)
	}
	if e := res.Errors[topic]; e != nil {
		return fmt.Errorf("delete topic %s: %w", topic, e)
	}
	return nil
}
