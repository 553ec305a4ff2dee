package kafkaio_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// Ping and EnsureTopics run in loops (readiness probes, start-up retries): they must not leave
// connection pools and their goroutines behind.
func TestAdminCallsLeaveNoGoroutines(t *testing.T) {
	brokers := testenv.Kafka(t)
	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 5 {
		if err := kafkaio.Ping(ctx, brokers); err != nil {
			t.Fatal(err)
		}
	}
	if err := kafkaio.EnsureTopics(ctx, brokers, kafkaio.TopicSpec{Name: testenv.Name(t, "leak"), Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
}
