package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/orderpipe/pipeline/normalizer/internal/consumer"
	"github.com/orderpipe/pipeline/normalizer/internal/orderstate"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/logging"
	"github.com/orderpipe/pipeline/plumbing/ops"
	"github.com/orderpipe/pipeline/plumbing/service"
	"github.com/orderpipe/pipeline/schemas"
)

// rawTopicConfigs are the settings of the topics that hold raw callbacks (raw and its DLQ).
var rawTopicConfigs = map[string]string{"max.message.bytes": strconv.Itoa(schemas.RawMaxMessageBytes)}

// maxBatchBytes keeps one produce batch under the broker's default message.max.bytes (1 MiB).
const maxBatchBytes = 900 << 10

// run wires the normalizer and blocks until ctx ends and it has drained. It starts even while
// Kafka or Redis is down or refuses its credentials: not ready, saying why, until they answer.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, err := logging.New(cfg.LogLevel, stdout)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("service", "normalizer"))
	cfg.Kafka.Log(log)
	cfg.Redis.Log(log)

	reg := ops.NewRegistry()
	ready := ops.NewReadiness(consumer.CheckKafka, consumer.CheckRedis, consumer.CheckLoop)
	metrics := consumer.NewMetrics(reg)

	rdb, err := cfg.Redis.NewClient()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	defer rdb.Close()
	store := orderstate.New(rdb, cfg.KeyPrefix, cfg.DedupTTL)

	log.Info("normalizer starting", zap.String("topic", cfg.TopicRaw), zap.String("status_topic", cfg.TopicStatus),
		zap.String("dlq_topic", cfg.TopicRawDLQ), zap.String("group", cfg.GroupID))

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.Serve(ctx, cfg.OpsAddr, ops.Handler(reg, ready)) })
	g.Go(func() error {
		service.Watch(ctx, ready, consumer.CheckKafka, 5*time.Second, log, cfg.Kafka.Ping)
		return nil
	})
	g.Go(func() error {
		service.Watch(ctx, ready, consumer.CheckRedis, 5*time.Second, log, func(ctx context.Context) error { return cfg.Redis.Ping(ctx, rdb) })
		return nil
	})
	lag := kafkaio.NewLag(reg)
	g.Go(func() error {
		lag.Watch(ctx, cfg.Kafka, cfg.GroupID, cfg.TopicRaw, 10*time.Second)
		return nil
	})
	g.Go(func() error {
		defer ready.Drain()
		if err := cfg.PrepareTopics(ctx, ready, consumer.CheckKafka, log,
			kafkaio.TopicSpec{Name: cfg.TopicRaw, Partitions: cfg.TopicPartitions, Configs: rawTopicConfigs},
			kafkaio.TopicSpec{Name: cfg.TopicStatus, Partitions: cfg.TopicPartitions},
			kafkaio.TopicSpec{Name: cfg.TopicRawDLQ, Partitions: cfg.TopicPartitions, Configs: rawTopicConfigs},
		); err != nil {
			return nil // ctx ended while Kafka was unreachable
		}
		reader := cfg.Kafka.NewFetchReader(kafkaio.ReaderConfig{GroupID: cfg.GroupID, Topic: cfg.TopicRaw})
		defer reader.Close()
		// A full batch of events must stay under the broker's message.max.bytes; the DLQ holds raw
		// records unchanged, which may be as large as callbacks.raw.v1 allows. Both go through the
		// Producer, which puts every partition of a batch into one produce request (kafka.Writer
		// sends one request per partition): fewer, larger requests cost the broker less.
		status := cfg.Kafka.NewProducer(kafkaio.ProducerConfig{Topic: cfg.TopicStatus, BatchBytes: maxBatchBytes})
		defer status.Close()
		dlqBytes := int64(schemas.RawMaxMessageBytes - 16<<10)
		dlq := cfg.Kafka.NewProducer(kafkaio.ProducerConfig{Topic: cfg.TopicRawDLQ, BatchBytes: int(dlqBytes)})
		defer dlq.Close()
		cons, err := consumer.New(consumer.Config{
			Reader: reader, Status: status, DLQ: dlq, Store: store, Metrics: metrics, Ready: ready,
			Log: log, MaxBatch: cfg.BatchMax, MaxEventBytes: maxBatchBytes, MaxDeadLetterBytes: dlqBytes,
			DrainTimeout: cfg.DrainTimeout, StallTimeout: cfg.StallTimeout, CommitInterval: cfg.CommitInterval,
		})
		if err != nil {
			return err
		}
		return cons.Run(ctx)
	})
	err = g.Wait()
	log.Info("normalizer stopped")
	return err
}
