// Package testenv points integration tests at the real Kafka and Redis that `make test` starts
// (deploy/local/testenv.sh exports KAFKA_BROKERS and REDIS_ADDR). Outside `make test` a test that
// needs them skips with a message saying how to run it; under CI=true a missing Kafka or Redis is
// a failure, never a skip.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/retry"
)

func unavailable(t testing.TB, what, variable string) {
	t.Helper()
	msg := what + " is not available (" + variable + " unset or unreachable); run `make test`, which starts a real Kafka and Redis"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Kafka returns the brokers of the real test Kafka, or skips/fails the test.
func Kafka(t testing.TB) []string {
	t.Helper()
	v := os.Getenv("KAFKA_BROKERS")
	if v == "" {
		unavailable(t, "Kafka", "KAFKA_BROKERS")
	}
	brokers := strings.Split(v, ",")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kafkaio.Ping(ctx, brokers); err != nil {
		unavailable(t, "Kafka at "+v+" ("+err.Error()+")", "KAFKA_BROKERS")
	}
	return brokers
}

// Redis returns the address of the real test Redis, or skips/fails the test.
func Redis(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		unavailable(t, "Redis", "REDIS_ADDR")
	}
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		unavailable(t, "Redis at "+addr+" ("+err.Error()+")", "REDIS_ADDR")
	}
	c.Close()
	return addr
}

var unsafe = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Name returns a name unique to this test run, for topics, group ids and Redis key prefixes:
// tests share one broker and one Redis and must not see each other's data.
func Name(t testing.TB, prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := prefix + "." + unsafe.ReplaceAllString(t.Name(), "_") + "." + hex.EncodeToString(b[:])
	if len(n) > 200 {
		n = n[:200]
	}
	return n
}

// Topics creates the named topics with the given partition count (replication factor 1, or 3
// on the three-broker Kafka of TEST_KAFKA_CLUSTER=1) through kafkaio.EnsureTopics, which returns
// once every partition's leader takes writes.
func Topics(t testing.TB, brokers []string, partitions int, names ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rf := 1
	if os.Getenv("TEST_KAFKA_CLUSTER") == "1" && len(brokers) >= 3 { // the three-broker Kafka: replicate as production does
		rf = 3
	}
	specs := make([]kafkaio.TopicSpec, len(names))
	for i, n := range names {
		specs[i] = kafkaio.TopicSpec{Name: n, Partitions: partitions, ReplicationFactor: rf}
	}
	// On the three brokers, a test may have one down for a few seconds, and a request sent to it
	// fails: ask again within ctx.
	err := retry.Do(ctx, retry.Policy{Min: 200 * time.Millisecond, Max: time.Second}, func(ctx context.Context) error {
		err := kafkaio.EnsureTopics(ctx, brokers, specs...)
		if err != nil && (rf != 3 || !kafkaio.Retriable(err)) {
			return retry.Permanent(err)
		}
		return err
	}, func(err error, _ time.Duration) { t.Logf("create topics, again: %v", err) })
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
}
