package kafkaio_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

func TestNewWriterIsSafe(t *testing.T) {
	w := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "x"})
	if w.RequiredAcks != kafka.RequireAll {
		t.Errorf("RequiredAcks = %v, want RequireAll", w.RequiredAcks)
	}
	if _, ok := w.Balancer.(*kafka.Murmur2Balancer); !ok {
		t.Errorf("Balancer = %T, want *kafka.Murmur2Balancer", w.Balancer)
	}
	if w.BatchTimeout != kafkaio.DefaultBatchTimeout {
		t.Errorf("BatchTimeout = %v, want %v", w.BatchTimeout, kafkaio.DefaultBatchTimeout)
	}
	if w.BatchBytes <= 0 || w.BatchBytes > 1<<20 {
		t.Errorf("BatchBytes = %d, want within the broker's default max.message.bytes", w.BatchBytes)
	}
	if w.Async || w.AllowAutoTopicCreation {
		t.Errorf("Async = %v, AllowAutoTopicCreation = %v; want both false", w.Async, w.AllowAutoTopicCreation)
	}
	if w.Transport == kafka.DefaultTransport || w.Transport == nil {
		t.Error("writer shares kafka.DefaultTransport")
	}
}

func TestNewReaderNeverAutoCommits(t *testing.T) {
	r := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: []string{"127.0.0.1:1"}, GroupID: "g", Topic: "x"})
	defer r.Close()
	if got := r.Config().CommitInterval; got != 0 {
		t.Errorf("CommitInterval = %v, want 0", got)
	}
}

// A record written with the safe writer comes back through a group reader with its key, value and
// headers, lands on the Murmur2 partition of its key, and a committed offset is where a new
// reader of the same group resumes.
func TestRoundTripAndCommit(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.Name(t, "kafkaio")
	group := testenv.Name(t, "group")
	testenv.Topics(t, brokers, 3, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	w := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: brokers, Topic: topic})
	defer w.Close()
	msgs := []kafka.Message{
		{Key: []byte("dianwoda:A"), Value: []byte("1"), Headers: []kafka.Header{{Key: "h", Value: []byte("v")}}},
		{Key: []byte("dianwoda:A"), Value: []byte("2")},
		{Key: []byte("eleme:B"), Value: []byte("3")},
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write: %v", err)
	}

	r := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: brokers, GroupID: group, Topic: topic})
	got := map[string]kafka.Message{}
	for len(got) < 3 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		got[string(m.Value)] = m
	}
	bal := &kafka.Murmur2Balancer{}
	for v, m := range got {
		want := bal.Balance(kafka.Message{Key: m.Key}, 0, 1, 2)
		if m.Partition != want {
			t.Errorf("value %s key %s on partition %d, want %d (Murmur2)", v, m.Key, m.Partition, want)
		}
	}
	if got["1"].Partition != got["2"].Partition || got["1"].Offset >= got["2"].Offset {
		t.Errorf("same key out of order: %+v %+v", got["1"], got["2"])
	}
	if kafkaio.Header(got["1"], "h") != "v" {
		t.Errorf("header lost: %+v", got["1"].Headers)
	}
	// Commit only the first record of key A; the second must come back to the next member.
	if err := r.CommitMessages(ctx, got["1"], got["3"]); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	r2 := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: brokers, GroupID: group, Topic: topic})
	defer r2.Close()
	m, err := r2.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("fetch after restart: %v", err)
	}
	if string(m.Value) != "2" {
		t.Errorf("after restart got %q, want the uncommitted record %q", m.Value, "2")
	}
}

// A topic EnsureTopics has just created takes writes at once, on every partition. The broker
// answers CreateTopics before each partition's leader has taken it up (Not Leader For
// Partition), and kafka-go's writer retries a batch for under a second without refreshing its
// metadata, so a service or test that wrote straight after creating lost the write.
func TestEnsureTopicsReturnsWritableTopics(t *testing.T) {
	brokers := testenv.Kafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for round := range 3 {
		topic := testenv.Name(t, "fresh")
		const partitions = 48
		if err := kafkaio.EnsureTopics(ctx, brokers, kafkaio.TopicSpec{Name: topic, Partitions: partitions}); err != nil {
			t.Fatal(err)
		}
		w := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: brokers, Topic: topic, MaxAttempts: 1})
		w.Balancer = kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return int(m.Key[0]) })
		msgs := make([]kafka.Message, partitions)
		for p := range msgs {
			msgs[p] = kafka.Message{Key: []byte{byte(p)}, Value: []byte("v")}
		}
		err := w.WriteMessages(ctx, msgs...)
		w.Close()
		var werr kafka.WriteErrors
		if errors.As(err, &werr) {
			t.Fatalf("round %d: writing to every partition of a topic EnsureTopics returned: %d of %d partitions refused, the first with %v",
				round, werr.Count(), partitions, firstErr(werr))
		}
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

func firstErr(errs kafka.WriteErrors) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
