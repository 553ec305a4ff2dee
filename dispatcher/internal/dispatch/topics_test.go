package dispatch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/ops"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// TestCheckTopicsJustCreated: the dispatcher's readiness probe asks for its topics' metadata
// before they exist, then the service creates them and checks them at once. The probe's
// transport answers from a view of the cluster refreshed every MetadataTTL, so the check saw
// the topics as unknown and stopped the service: `make run` (a fresh embedded broker every
// time) never started. A topic just created must pass.
func TestCheckTopicsJustCreated(t *testing.T) {
	brokers := testenv.Kafka(t)
	topics := []string{testenv.Name(t, "a"), testenv.Name(t, "b")}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := kafkaio.Plaintext(brokers...).NewClientFor(3*time.Second, topics...)
	defer client.Close()
	if err := client.Ping(ctx, topics...); err == nil {
		t.Fatal("the probe found topics that do not exist yet")
	}
	var specs []kafkaio.TopicSpec
	for _, n := range topics {
		specs = append(specs, kafkaio.TopicSpec{Name: n, Partitions: 3})
	}
	if err := kafkaio.EnsureTopics(ctx, brokers, specs...); err != nil {
		t.Fatal(err)
	}
	if err := CheckTopics(ctx, client.Client, topics, ops.NewReadiness(), zap.NewNop()); err != nil {
		t.Fatalf("CheckTopics right after creating the topics: %v", err)
	}
}

// TestCheckTopicsMissing: a topic that does not exist still stops the service, named, once
// the grace for a topic just created has passed.
func TestCheckTopicsMissing(t *testing.T) {
	brokers := testenv.Kafka(t)
	missing := testenv.Name(t, "missing")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := kafkaio.Plaintext(brokers...).NewClientFor(3*time.Second, missing)
	defer client.Close()
	defer func(g time.Duration) { newTopicGrace = g }(newTopicGrace)
	newTopicGrace = 2 * time.Second
	start := time.Now()
	err := CheckTopics(ctx, client.Client, []string{missing}, ops.NewReadiness(), zap.NewNop())
	if !errors.Is(err, ErrTopics) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("CheckTopics = %v, want ErrTopics naming %s", err, missing)
	}
	t.Logf("refused after %v", time.Since(start).Round(time.Millisecond))
}
