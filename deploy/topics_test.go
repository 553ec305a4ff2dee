package deploy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// kafkaCLI writes kafka-topics.sh and kafka-configs.sh wrappers around the Kafka jars that
// deploy/local/kafka.sh fetched (the same release as the apache/kafka image of the Job). The
// script under test starts them about 30 times, so the wrappers share a class-data archive
// (JDK CDS) recorded by one kafka-topics --list against broker: each start then maps the
// admin client's classes instead of loading them, which halves it (~1.1 s to ~0.55 s here).
// Without the archive (its recording failed) they start as before.
func kafkaCLI(t *testing.T, broker string) string {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		t.Fatal("java is needed to run the Kafka command-line tools (deploy/local/testenv.sh installs it)")
	}
	out, err := exec.Command("local/kafka.sh", "classpath").Output()
	if err != nil {
		t.Fatalf("kafka.sh classpath: %v", errText(err))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	cp := lines[len(lines)-1]
	bin := t.TempDir()
	flags := "-Xshare:auto -XX:TieredStopAtLevel=1"
	archive := filepath.Join(bin, "kafka-tools.jsa")
	record := exec.Command("java", "-XX:ArchiveClassesAtExit="+archive, "-XX:TieredStopAtLevel=1", "-cp", cp,
		"org.apache.kafka.tools.TopicCommand", "--bootstrap-server", broker, "--list")
	if out, err := record.CombinedOutput(); err != nil {
		t.Logf("no class-data archive for the Kafka tools (%v): they start without it\n%s", err, out)
	} else if _, err := os.Stat(archive); err == nil {
		flags += " -XX:SharedArchiveFile=" + archive
	}
	for name, class := range map[string]string{
		"kafka-topics.sh":              "org.apache.kafka.tools.TopicCommand",
		"kafka-configs.sh":             "kafka.admin.ConfigCommand",
		"kafka-broker-api-versions.sh": "org.apache.kafka.tools.BrokerApiVersionsCommand",
	} {
		script := "#!/bin/sh\nexec java " + flags + " -cp '" + cp + "' " + class + ` "$@"` + "\n"
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

// TestTopicJobScriptIdempotent runs the topic Job's script (k8s/base/topics.sh) against the real
// broker twice: it creates every topic, converges the settings of a topic that existed with other
// ones (retention), leaves that topic's partitions alone and says so, and a second run changes
// nothing and succeeds.
func TestTopicJobScriptIdempotent(t *testing.T) {
	t.Parallel() // ~30 JVM starts of the Kafka tools: let the offline checks run meanwhile
	brokers := testenv.Kafka(t)
	bin := kafkaCLI(t, brokers[0])
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "topicsjob" + hex.EncodeToString(b[:]) + "."
	cli := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), append([]string{"--bootstrap-server", brokers[0]}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	// An existing topic with a retention of 1 s and fewer partitions than asked for.
	cli("kafka-topics.sh", "--create", "--topic", prefix+"orders.status.v1", "--partitions", "2", "--replication-factor", "1", "--config", "retention.ms=1000")

	run := func() (string, error) {
		cmd := exec.Command("bash", "k8s/base/topics.sh")
		cmd.Env = append(os.Environ(), "KAFKA_BROKERS="+brokers[0], "KAFKA_BIN="+bin, "TOPIC_PREFIX="+prefix,
			"PARTITIONS=3", "REPLICATION=3", "MIN_ISR=2") // capped on one broker: RF 1, min ISR 1
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	for i := 1; i <= 2; i++ {
		out, err := run()
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out)
		}
		if !strings.Contains(out, prefix+"orders.status.v1 has 2 partitions, fewer than PARTITIONS=3") {
			t.Errorf("run %d does not report the short topic:\n%s", i, out)
		}
	}
	described := cli("kafka-topics.sh", "--describe", "--topic", prefix+".*")
	for _, topic := range []string{"callbacks.raw.v1", "callbacks.dlq.v1", "orders.status.v1", "orders.delivery.v1",
		"orders.lifecycle.v1", "orders.refund.v1", "orders.status.dlq.v1", "dangdang.results.v1"} {
		if !strings.Contains(described, "Topic: "+prefix+topic+"\t") {
			t.Errorf("topic %s was not created:\n%s", topic, described)
		}
	}
	if !strings.Contains(described, "Topic: "+prefix+"orders.status.v1\tTopicId") || !regexpMatch(`Topic: `+prefix+`orders\.status\.v1\s+TopicId: \S+\s+PartitionCount: 2`, described) {
		t.Errorf("the existing topic's partitions changed:\n%s", described)
	}
	minISR := "min.insync.replicas=1" // capped on one broker
	if len(brokers) >= 3 {
		minISR = "min.insync.replicas=2" // the three brokers of TEST_KAFKA_CLUSTER=1
	}
	for topic, want := range map[string][]string{
		"orders.status.v1": {"retention.ms=604800000", minISR, "cleanup.policy=delete"},
		"callbacks.raw.v1": {"retention.ms=604800000", "max.message.bytes=2097152"},
		"callbacks.dlq.v1": {"retention.ms=2592000000", "max.message.bytes=2097152"},
	} {
		cfg := cli("kafka-configs.sh", "--describe", "--entity-type", "topics", "--entity-name", prefix+topic)
		for _, w := range want {
			if !topicConfig(cfg, w) {
				t.Errorf("%s: %s not set:\n%s", topic, w, cfg)
			}
		}
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

// topicConfig reports whether kafka-configs.sh --describe of a topic (its own settings, one per
// line: "  key=value sensitive=false synonyms={...}") sets kv. The synonyms list the broker's
// and the default values too, so a plain substring match would also find those.
func topicConfig(described, kv string) bool {
	return regexpMatch(`(?m)^\s*`+regexp.QuoteMeta(kv)+` sensitive=`, described)
}

// TestTopicJobScriptWithABrokerDown runs the topic Job's script on the three-broker Kafka
// (TEST_KAFKA_CLUSTER=1) with one broker stopped, as in a rolling restart: it creates the topics
// with factor 3 and min.insync.replicas 2, and leaves an existing topic's min.insync.replicas at
// 2. It failed before the script counted the replicas partitions hold: it saw the two brokers
// that answer, created every topic with factor 2 and set min.insync.replicas 1 on every topic.
func TestTopicJobScriptWithABrokerDown(t *testing.T) {
	c := testenv.KafkaCluster(t)
	bin := kafkaCLI(t, c.Brokers[0])
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "topicsjobdown" + hex.EncodeToString(b[:]) + "."
	all := strings.Join(c.Brokers, ",")
	cli := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(filepath.Join(bin, name), append([]string{"--bootstrap-server", all}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	cli("kafka-topics.sh", "--create", "--topic", prefix+"orders.status.v1", "--partitions", "3", "--replication-factor", "3",
		"--config", "min.insync.replicas=2")

	const down = 3
	c.StopOne(down) // a controlled shutdown, as a rolling restart does
	t.Cleanup(func() { c.Restart(down) })
	for i := 0; strings.Count(cli("kafka-broker-api-versions.sh"), " (id: ") != 2; i++ {
		if i == 60 {
			t.Fatalf("the cluster still lists node %d 30 s after it stopped", down)
		}
		time.Sleep(500 * time.Millisecond)
	}
	cmd := exec.Command("bash", "k8s/base/topics.sh")
	cmd.Env = append(os.Environ(), "KAFKA_BROKERS="+all, "KAFKA_BIN="+bin, "TOPIC_PREFIX="+prefix,
		"PARTITIONS=3", "REPLICATION=3", "MIN_ISR=2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("topics.sh with node %d down: %v\n%s", down, err, out)
	}
	if !strings.Contains(string(out), "topics: 3 brokers: replication factor 3, min.insync.replicas 2") {
		t.Errorf("topics.sh with node %d down chose:\n%s", down, out)
	}
	described := cli("kafka-topics.sh", "--describe", "--topic", prefix+".*")
	if !regexpMatch(`Topic: `+regexp.QuoteMeta(prefix)+`callbacks\.raw\.v1\s+TopicId: \S+\s+PartitionCount: 3\s+ReplicationFactor: 3\s`, described) {
		t.Errorf("callbacks.raw.v1 not created with factor 3:\n%s", described)
	}
	for _, topic := range []string{"orders.status.v1", "callbacks.raw.v1"} {
		if cfg := cli("kafka-configs.sh", "--describe", "--entity-type", "topics", "--entity-name", prefix+topic); !topicConfig(cfg, "min.insync.replicas=2") {
			t.Errorf("%s: min.insync.replicas is not 2:\n%s", topic, cfg)
		}
	}
}
