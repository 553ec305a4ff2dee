package testenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// TestKafkaClusterSurvivesLeaderKill9 proves the three-broker test Kafka is what issue 13 needs:
// with the leader of an RF 3, min.insync.replicas=2 topic killed with SIGKILL, an acks=all write
// still succeeds and nothing acknowledged before or after is missing.
func TestKafkaClusterSurvivesLeaderKill9(t *testing.T) {
	c := testenv.KafkaCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topic := testenv.Name(t, "cluster")
	if err := kafkaio.EnsureTopics(ctx, c.Brokers, kafkaio.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 3}); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	client := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: 10 * time.Second}
	partition := func() kafka.Partition {
		t.Helper()
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 1 {
			t.Fatalf("metadata of %s: %+v, %v", topic, md, err)
		}
		return md.Topics[0].Partitions[0]
	}
	p := partition()
	if len(p.Replicas) != 3 {
		t.Fatalf("partition has %d replicas, want 3", len(p.Replicas))
	}
	w := &kafka.Writer{Addr: kafka.TCP(c.Brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
		MaxAttempts: 60, WriteBackoffMin: 100 * time.Millisecond, WriteBackoffMax: time.Second, BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("before")}); err != nil {
		t.Fatalf("write before the kill: %v", err)
	}

	leader := p.Leader.ID
	c.Kill9(leader)
	t.Cleanup(func() { c.Restart(leader) })
	start := time.Now()
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("after")}); err != nil {
		t.Fatalf("acks=all write with leader %d killed: %v", leader, err)
	}
	t.Logf("acks=all write succeeded %v after kill -9 of leader %d", time.Since(start).Round(time.Millisecond), leader)
	if p := partition(); p.Leader.ID == leader {
		t.Errorf("leader is still the killed node %d", leader)
	}

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Brokers, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for _, want := range []string{"before", "after"} {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read back %q: %v", want, err)
		}
		if string(m.Value) != want {
			t.Fatalf("read %q, want %q", m.Value, want)
		}
	}
}
