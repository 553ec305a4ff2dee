package kafkaio_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// TestReplicationOnThreeBrokers: on three brokers topics are created with RF 3 and min ISR 2,
// and the start-up check logs, at error level and with the topic's name, a topic replicated
// less (here one created with RF 1), and nothing for the safe one.
func TestReplicationOnThreeBrokers(t *testing.T) {
	cl := testenv.KafkaCluster(t)
	conn := kafkaio.Plaintext(cl.Brokers...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	safe, weak := testenv.Name(t, "safe"), testenv.Name(t, "weak")
	// TestKafkaClusterSurvivesLeaderKill9 may have a broker down for a few seconds: a request
	// the Transport sends to it fails, and is asked again as the services' start-up does
	// (service.PrepareTopics).
	var rf, minISR int
	err := retry.Do(ctx, retry.Policy{Min: 200 * time.Millisecond, Max: time.Second}, func(ctx context.Context) (err error) {
		rf, minISR, err = conn.EnsureReplicatedTopics(ctx, kafkaio.Replication{Factor: 3, MinInsync: 2}, kafkaio.TopicSpec{Name: safe, Partitions: 3})
		if err != nil {
			return err
		}
		return conn.EnsureTopics(ctx, kafkaio.TopicSpec{Name: weak, Partitions: 1, ReplicationFactor: 1,
			Configs: map[string]string{"min.insync.replicas": "1"}})
	}, func(err error, _ time.Duration) { t.Logf("create topics, again: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	if rf != 3 || minISR != 2 {
		t.Errorf("three brokers: RF %d, min ISR %d; want 3 and 2", rf, minISR)
	}
	core, logs := observer.New(zap.DebugLevel)
	if err := conn.CheckReplication(ctx, zap.New(core), safe, weak); err != nil {
		t.Fatal(err)
	}
	var flagged []string
	for _, e := range logs.All() {
		if e.Level == zap.ErrorLevel {
			flagged = append(flagged, e.ContextMap()["topic"].(string))
		}
	}
	if strings.Join(flagged, ",") != weak {
		t.Errorf("error-level lines for %v, want only %s", flagged, weak)
	}
}
