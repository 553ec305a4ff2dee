package kafkaio_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

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
	offs, err := kafkaio.GroupOffsets(ctx, brokers, group, topic)
	if want := (kafkaio.PartitionOffsets{Committed: 4, End: 10, Lag: 6}); err != nil || offs[0] != want {
		t.Errorf("offsets = %+v, %v; want %+v", offs, err, want)
	}
	// The exported gauges: broker-side, labelled by group, topic and partition.
	reg := prometheus.NewRegistry()
	l := kafkaio.NewLag(reg)
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { l.Watch(wctx, brokers, group, topic, 100*time.Millisecond); close(done) }()
	for {
		if n, ok := l.Backlog(); ok {
			if n != 6 {
				t.Errorf("backlog %d, want 6", n)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wcancel()
	<-done
	want := fmt.Sprintf(`
# HELP orderpipe_consumer_group_committed_offset The consumer group's committed offset, as the broker sees it (-1 before its first commit).
# TYPE orderpipe_consumer_group_committed_offset gauge
orderpipe_consumer_group_committed_offset{group=%q,partition="0",topic=%q} 4
# HELP orderpipe_consumer_group_lag_records Records of the input topic not yet committed by the consumer group (end offset minus committed offset), as the broker sees it.
# TYPE orderpipe_consumer_group_lag_records gauge
orderpipe_consumer_group_lag_records{group=%q,partition="0",topic=%q} 6
`, group, topic, group, topic)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "orderpipe_consumer_group_committed_offset", "orderpipe_consumer_group_lag_records"); err != nil {
		t.Error(err)
	}
}
