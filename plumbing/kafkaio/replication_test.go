package kafkaio_test

import (
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
)

// TestBrokersIn: a broker that is down is not listed in the metadata, but the replicas it holds
// are, so the cluster's size is the larger of the two (TestKafkaClusterSurvivesLeaderKill9 shows
// it on three brokers with one killed).
func TestBrokersIn(t *testing.T) {
	b1, b2 := kafka.Broker{ID: 1}, kafka.Broker{ID: 2}
	down := kafka.Broker{} // how kafka-go fills in a replica on a broker it does not list
	part := func(replicas ...kafka.Broker) kafka.Partition { return kafka.Partition{Replicas: replicas} }
	tests := []struct {
		name string
		give kafka.MetadataResponse
		want int
	}{
		{"no topics", kafka.MetadataResponse{Brokers: []kafka.Broker{b1, b2}}, 2},
		{"all up", kafka.MetadataResponse{Brokers: []kafka.Broker{b1, b2}, Topics: []kafka.Topic{{Partitions: []kafka.Partition{part(b1, b2)}}}}, 2},
		{"one of three down", kafka.MetadataResponse{Brokers: []kafka.Broker{b1, b2},
			Topics: []kafka.Topic{{Partitions: []kafka.Partition{part(b1), part(b2, b1, down)}}}}, 3},
		{"single broker", kafka.MetadataResponse{Brokers: []kafka.Broker{b1}, Topics: []kafka.Topic{{Partitions: []kafka.Partition{part(b1)}}}}, 1},
	}
	for _, tt := range tests {
		if got := kafkaio.BrokersIn(&tt.give); got != tt.want {
			t.Errorf("%s: %d brokers, want %d", tt.name, got, tt.want)
		}
	}
}

func TestReplicationFor(t *testing.T) {
	tests := []struct {
		give          kafkaio.Replication
		brokers       int
		wantRF, wantM int
	}{
		{kafkaio.Replication{Factor: 3, MinInsync: 2}, 1, 1, 1},
		{kafkaio.Replication{Factor: 3, MinInsync: 2}, 2, 2, 1},
		{kafkaio.Replication{Factor: 3, MinInsync: 2}, 3, 3, 2},
		{kafkaio.Replication{Factor: 3, MinInsync: 2}, 9, 3, 2},
		{kafkaio.Replication{Factor: 5, MinInsync: 3}, 9, 5, 3},
		{kafkaio.Replication{Factor: 3, MinInsync: 3}, 9, 3, 2}, // capped at RF-1: one replica may be down
		{kafkaio.Replication{Factor: 1, MinInsync: 1}, 9, 1, 1},
		{kafkaio.Replication{Factor: 3, MinInsync: 2}, 0, 1, 1},
	}
	for _, tt := range tests {
		rf, m := tt.give.For(tt.brokers)
		if rf != tt.wantRF || m != tt.wantM {
			t.Errorf("%+v.For(%d) = %d, %d; want %d, %d", tt.give, tt.brokers, rf, m, tt.wantRF, tt.wantM)
		}
	}
}

func TestLoadReplication(t *testing.T) {
	l := envconfig.New(envOf(nil))
	if r := kafkaio.LoadReplication(l); r != (kafkaio.Replication{Factor: 3, MinInsync: 2}) || l.Err() != nil {
		t.Fatalf("defaults = %+v, %v", r, l.Err())
	}
	l = envconfig.New(envOf(map[string]string{"TOPIC_REPLICATION_FACTOR": "2", "TOPIC_MIN_INSYNC_REPLICAS": "3"}))
	kafkaio.LoadReplication(l)
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "TOPIC_MIN_INSYNC_REPLICAS") {
		t.Fatalf("min ISR above RF: %v", err)
	}
	l = envconfig.New(envOf(map[string]string{"TOPIC_REPLICATION_FACTOR": "0", "TOPIC_MIN_INSYNC_REPLICAS": "x"}))
	kafkaio.LoadReplication(l)
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "TOPIC_REPLICATION_FACTOR") || !strings.Contains(err.Error(), "TOPIC_MIN_INSYNC_REPLICAS") {
		t.Fatalf("both wrong: %v", err)
	}
}

func TestUnderReplicated(t *testing.T) {
	topics := []kafkaio.TopicReplication{
		{Topic: "ok", Factor: 3, MinInsync: 2},
		{Topic: "rf1", Factor: 1, MinInsync: 1},
		{Topic: "isr1", Factor: 3, MinInsync: 1},
	}
	if got := kafkaio.UnderReplicated(1, topics); len(got) != 0 {
		t.Errorf("one broker cannot do better, got %+v", got)
	}
	got := kafkaio.UnderReplicated(3, topics)
	if len(got) != 2 || got[0].Topic != "rf1" || got[1].Topic != "isr1" {
		t.Errorf("3 brokers: %+v, want rf1 and isr1", got)
	}
}
