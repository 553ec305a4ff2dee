package kafkaio_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// cachedTopics is every topic whose metadata tr holds: what its refresh asks the brokers for.
func cachedTopics(t *testing.T, ctx context.Context, brokers []string, tr *kafka.Transport) []string {
	t.Helper()
	md, err := (&kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: 10 * time.Second}).Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tp := range md.Topics {
		names = append(names, tp.Name)
	}
	slices.Sort(names)
	return names
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// TestTransportsAskForTheirTopicsOnly: the Transport of every reader, producer, writer and
// client that works on known topics refreshes their metadata only, not the whole cluster's
// (kafka-go's default, about twice a second per Transport: each such request cost the broker
// ~10 ms with 153 topics). Admin clients and a producer given no topic still see every topic.
func TestTransportsAskForTheirTopicsOnly(t *testing.T) {
	brokers := testenv.Kafka(t)
	mine, later, other := testenv.Name(t, "mine"), testenv.Name(t, "later"), testenv.Name(t, "other")
	testenv.Topics(t, brokers, 3, mine, other)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := kafkaio.Plaintext(brokers...)

	narrowed := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topics: []string{mine, later}})
	defer narrowed.Close()
	reader := conn.NewFetchReader(kafkaio.ReaderConfig{Topic: mine})
	defer reader.Close()
	writer := conn.NewWriter(kafkaio.WriterConfig{Topic: mine})
	defer writer.Close()
	client := conn.NewClientFor(5*time.Second, mine)
	defer client.Close()
	cases := []struct {
		name string
		tr   *kafka.Transport
		want []string // nil: every topic, other included
	}{
		{"NewTransportFor(mine)", conn.NewTransportFor(mine), []string{mine}},
		{"NewTransportFor()", conn.NewTransportFor(), []string{}},
		{"Producer{Topic: mine}", kafkaio.TransportOf(kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topic: mine})), []string{mine}},
		{"Producer{Topics: mine, later}", kafkaio.TransportOf(narrowed), sorted(mine, later)}, // later not made yet: named, with its error
		{"FetchReader{Topic: mine}", kafkaio.TransportOf(reader), []string{mine}},
		{"Writer{Topic: mine}", writer.Transport.(*kafka.Transport), []string{mine}},
		{"NewClientFor(mine)", client.Transport(), []string{mine}},
		{"NewClient (admin)", conn.NewClient(5 * time.Second).Transport(), nil},
		{"Producer{} (any topic)", kafkaio.TransportOf(kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers})), nil},
	}
	for _, c := range cases {
		got := cachedTopics(t, ctx, brokers, c.tr)
		switch {
		case c.want == nil && !slices.Contains(got, other):
			t.Errorf("%s: metadata of %d topics, %s missing; want every topic", c.name, len(got), other)
		case c.want != nil && !slices.Equal(got, c.want):
			t.Errorf("%s: metadata of %v, want only %v", c.name, got, c.want)
		}
	}

	// A narrowed producer refuses a topic that is not its own, at once and by name...
	err := narrowed.WriteMessages(ctx, kafka.Message{Topic: other, Value: []byte("x")})
	if err == nil || !strings.Contains(err.Error(), other) {
		t.Fatalf("write to %s through a producer of %s and %s: %v, want a refusal naming it", other, mine, later, err)
	}
	// ...and writes one of its topics created after it started, once the refresh sees it.
	if err := narrowed.WriteMessages(ctx, kafka.Message{Topic: mine, Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	testenv.Topics(t, brokers, 3, later)
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := narrowed.WriteMessages(ctx, kafka.Message{Topic: later, Value: []byte("x")})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write to %s, created after the producer started: %v", later, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
