package kafkaio_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// Lag is every record before the group commits anything, and what is left after a commit.
func TestGroupLag(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic, group := testenv.Name(t, "lag"), testenv.Name(t, "group")
	testenv.Topics(t, brokers, 1, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: brokers, Topic: topic})
	defer w.Close()
	msgs := make([]kafka.Message, 10)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte("k"), Value: []byte{byte(i)}}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	lag, err := kafkaio.GroupLag(ctx, brokers, group, topic)
	if err != nil || lag[0] != 10 {
		t.Fatalf("lag before any commit = %v, %v; want 10", lag, err)
	}
	r := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: brokers, GroupID: group, Topic: topic})
	defer r.Close()
	var last kafka.Message
	for range 4 {
		if last, err = r.FetchMessage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.CommitMessages(ctx, last); err != nil {
		t.Fatal(err)
	}
	lag, err = kafkaio.GroupLag(ctx, brokers, group, topic)
	if err != nil || lag[0] != 6 {
		t.Errorf("lag after committing 4 = %v, %v; want 6", lag, err)
	}
}
