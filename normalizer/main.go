// Command normalizer consumes raw platform callbacks (callbacks.raw.v1), drops duplicates, guards
// each order against moving backwards, and emits unified status events (orders.status.v1).
// Poison records go to callbacks.dlq.v1. See README.md for guarantees and configuration.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/orderpipe/pipeline/normalizer/internal/consumer"
	"github.com/orderpipe/pipeline/normalizer/internal/orderstate"
	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/logging"
	"github.com/orderpipe/pipeline/plumbing/ops"
	"github.com/orderpipe/pipeline/schemas"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "normalizer:", err)
		os.Exit(1)
	}
}

// rawTopicConfigs are the settings of the topics that hold raw callbacks (raw and its DLQ).
var rawTopicConfigs = map[string]string{"max.message.bytes": strconv.Itoa(schemas.RawMaxMessageBytes)}

// maxBatchBytes keeps one produce batch under the broker's default message.max.bytes (1 MiB).
const maxBatchBytes = 900 << 10

type config struct {
	Brokers         []string
	RedisAddrs      []string
	RedisMasterName string
	OpsAddr         string
	TopicRaw        string
	TopicRawDLQ     string
	TopicStatus     string
	GroupID         string
	DedupTTL        time.Duration
	KeyPrefix       string
	AutoCreate      bool
	Partitions      int
	BatchMax        int
	LogLevel        string
	DrainTimeout    time.Duration
	StallTimeout    time.Duration
}

func loadConfig(getenv func(string) string) (config, error) {
	l := envconfig.New(getenv)
	c := config{
		Brokers:         l.HostPorts("KAFKA_BROKERS", "127.0.0.1:9092"),
		RedisAddrs:      l.HostPorts("REDIS_ADDR", "127.0.0.1:6379"),
		RedisMasterName: l.String("REDIS_MASTER_NAME", ""),
		OpsAddr:         l.Addr("OPS_ADDR", ":8082"),
		TopicRaw:        l.String("TOPIC_RAW", schemas.TopicRaw),
		TopicRawDLQ:     l.String("TOPIC_RAW_DLQ", schemas.TopicRawDLQ),
		TopicStatus:     l.String("TOPIC_STATUS", schemas.TopicStatus),
		GroupID:         l.String("KAFKA_GROUP_ID", "normalizer"),
		DedupTTL:        l.Duration("DEDUP_TTL", 168*time.Hour),
		KeyPrefix:       l.String("REDIS_KEY_PREFIX", "op:"),
		AutoCreate:      l.Bool("TOPIC_AUTO_CREATE", true),
		Partitions:      l.Int("TOPIC_PARTITIONS", 12, 1, 10000),
		BatchMax:        l.Int("BATCH_MAX_RECORDS", 2000, 1, 100000),
		LogLevel:        l.Level("LOG_LEVEL", "info"),
		DrainTimeout:    l.Duration("DRAIN_TIMEOUT", 20*time.Second),
		StallTimeout:    l.Duration("STALL_TIMEOUT", 2*time.Minute),
	}
	if c.TopicRaw == c.TopicStatus || c.TopicRaw == c.TopicRawDLQ || c.TopicStatus == c.TopicRawDLQ {
		l.Fail("TOPIC_RAW/TOPIC_STATUS/TOPIC_RAW_DLQ", "must be three different topics")
	}
	if c.DedupTTL < time.Minute {
		l.Fail("DEDUP_TTL", "%s is shorter than a minute; it must outlast every platform retry (default 168h)", c.DedupTTL)
	}
	return c, l.Err()
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log, err := logging.New(cfg.LogLevel, stdout)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	reg := ops.NewRegistry()
	ready := ops.NewReadiness(consumer.CheckKafka, consumer.CheckRedis, consumer.CheckLoop)
	metrics := consumer.NewMetrics(reg)

	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:        cfg.RedisAddrs,
		MasterName:   cfg.RedisMasterName,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  3 * time.Second,
		WriteTimeout: 3 * time.Second,
	})
	defer rdb.Close()
	store := orderstate.New(rdb, cfg.KeyPrefix, cfg.DedupTTL)

	log.Info("normalizer starting", zap.Strings("brokers", cfg.Brokers), zap.String("topic", cfg.TopicRaw),
		zap.String("status_topic", cfg.TopicStatus), zap.String("dlq_topic", cfg.TopicRawDLQ), zap.String("group", cfg.GroupID))

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.Serve(ctx, cfg.OpsAddr, ops.Handler(reg, ready)) })
	g.Go(func() error {
		watchDependencies(ctx, cfg.Brokers, store, ready)
		return nil
	})
	lag := kafkaio.NewLag(reg)
	g.Go(func() error {
		lag.Watch(ctx, cfg.Brokers, cfg.GroupID, cfg.TopicRaw, 10*time.Second)
		return nil
	})
	g.Go(func() error {
		defer ready.Drain()
		if cfg.AutoCreate {
			if err := ensureTopics(ctx, cfg, log); err != nil {
				return nil // ctx ended while Kafka was unreachable
			}
		}
		reader := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: cfg.Brokers, GroupID: cfg.GroupID, Topic: cfg.TopicRaw, QueueCapacity: cfg.BatchMax})
		status := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: cfg.Brokers, Topic: cfg.TopicStatus, BatchSize: cfg.BatchMax})
		dlq := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: cfg.Brokers, Topic: cfg.TopicRawDLQ})
		// kafkaio allows 16 MiB batches; a broker's default message.max.bytes is 1 MiB, and a
		// full batch of events would be refused as a whole ("Message Size Too Large").
		// The DLQ holds raw records unchanged, which may be as large as callbacks.raw.v1 allows.
		status.BatchBytes, dlq.BatchBytes = maxBatchBytes, schemas.RawMaxMessageBytes-16<<10
		defer func() {
			_ = reader.Close()
			_ = status.Close()
			_ = dlq.Close()
		}()
		cons, err := consumer.New(consumer.Config{
			Reader: reader, Status: status, DLQ: dlq, Store: store, Metrics: metrics, Ready: ready,
			Log: log, MaxBatch: cfg.BatchMax, DrainTimeout: cfg.DrainTimeout, StallTimeout: cfg.StallTimeout,
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

// ensureTopics creates the topics the normalizer reads and writes, retrying with backoff while
// Kafka is unreachable (the service starts, not ready, and waits).
func ensureTopics(ctx context.Context, cfg config, log *zap.Logger) error {
	specs := []kafkaio.TopicSpec{
		{Name: cfg.TopicRaw, Partitions: cfg.Partitions, Configs: rawTopicConfigs},
		{Name: cfg.TopicStatus, Partitions: cfg.Partitions},
		{Name: cfg.TopicRawDLQ, Partitions: cfg.Partitions, Configs: rawTopicConfigs},
	}
	delay := 200 * time.Millisecond
	for {
		tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := kafkaio.EnsureTopics(tctx, cfg.Brokers, specs...)
		cancel()
		if err == nil {
			return nil
		}
		log.Warn("ensure topics failed, retrying", zap.Error(err), zap.Duration("delay", delay))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

// watchDependencies pings Kafka and Redis every few seconds so that readiness reflects them even
// while no record flows.
func watchDependencies(ctx context.Context, brokers []string, store *orderstate.Store, ready *ops.Readiness) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ready.Set(consumer.CheckKafka, kafkaio.Ping(pctx, brokers))
		ready.Set(consumer.CheckRedis, store.Ping(pctx))
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
