package main

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
)

// The embedded broker of `make run` must work with the services' own kafka-go settings: topic
// creation, RequireAll writes and a consumer group that fetches and commits.
func TestEmbeddedKafkaWorksWithKafkaGo(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(12))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkaio.EnsureTopics(ctx, brokers, kafkaio.TopicSpec{Name: "t", Partitions: 12}); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	w := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: brokers, Topic: "t"})
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("v1")}, kafka.Message{Key: []byte("k"), Value: []byte("v2")}); err != nil {
		t.Fatalf("write: %v", err)
	}
	r := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: brokers, GroupID: "g", Topic: "t"})
	m, err := r.FetchMessage(ctx)
	if err != nil || string(m.Value) != "v1" {
		t.Fatalf("fetch = %q, %v; want v1", m.Value, err)
	}
	if err := r.CommitMessages(ctx, m); err != nil {
		t.Fatalf("commit: %v", err)
	}
	r.Close()
	r2 := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: brokers, GroupID: "g", Topic: "t"})
	defer r2.Close()
	m, err = r2.FetchMessage(ctx)
	if err != nil || string(m.Value) != "v2" {
		t.Fatalf("fetch after commit = %q, %v; want v2", m.Value, err)
	}
}
