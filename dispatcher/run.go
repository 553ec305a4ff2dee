package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/orderpipe/pipeline/dispatcher/internal/dangdang"
	"github.com/orderpipe/pipeline/dispatcher/internal/dispatch"
	"github.com/orderpipe/pipeline/dispatcher/internal/produce"
	"github.com/orderpipe/pipeline/dispatcher/internal/shoplimit"
	"github.com/orderpipe/pipeline/dispatcher/internal/writeback"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/logging"
	"github.com/orderpipe/pipeline/plumbing/ops"
	"github.com/orderpipe/pipeline/plumbing/service"
	"github.com/orderpipe/pipeline/plumbing/tracing"
)

// run wires the dispatcher and blocks until ctx ends and it has drained.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log, err := logging.New(cfg.LogLevel, stdout)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	tr, err := tracing.New(ctx, "dispatcher", cfg.TracesExporter)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tr.Shutdown(sctx)
	}()
	log = log.With(zap.String("service", "dispatcher"))
	cfg.Kafka.Log(log)
	cfg.Redis.Log(log)
	reg := ops.NewRegistry()
	ready := ops.NewReadiness("kafka", "redis")

	rdb, err := cfg.Redis.NewClient()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	defer rdb.Close()
	// Routed, results and DLQ records go through the Producer, which puts every partition of a
	// broker into one produce request (kafka.Writer sends one request per partition batch):
	// fewer, larger requests cost the broker less.
	// Every topic it reads or writes; the producer and the probe ask for their metadata only.
	topics := topicNames(cfg)
	writer := cfg.Kafka.NewProducer(kafkaio.ProducerConfig{Topics: topics})
	defer writer.Close()
	prod := produce.New(writer, log)
	writeErrors := prometheus.NewCounter(prometheus.CounterOpts{Name: "dispatcher_kafka_write_errors_total",
		Help: "Failed Kafka write attempts (retried until they succeed or the service stops)."})
	reg.MustRegister(writeErrors)
	reg.MustRegister(writer.Collectors("dispatcher_kafka")...)
	prod.OnError = func(string, error) { writeErrors.Inc() }
	prod.Health = func(topic string, err error) { ready.Set("write "+topic, err) }

	// One call rate per shop across every replica (Redis GCRA); each replica falls back to its
	// own local limiter while Redis does not answer.
	limits := make(map[string]shoplimit.Limit, len(cfg.Shops))
	for name, sh := range cfg.Shops {
		limits[name] = shoplimit.Limit{PerSecond: sh.RatePerSecond, Burst: sh.Burst}
	}
	limiter, err := shoplimit.New(shoplimit.Config{Redis: rdb, KeyPrefix: cfg.RedisPrefix, Shops: limits, Log: log, Registry: reg})
	if err != nil {
		return fmt.Errorf("shop rate limits: %w", err)
	}
	client := &dangdang.Client{URL: cfg.APIURL, HTTP: &http.Client{Timeout: cfg.CallTimeout}, Propagator: tr.Propagator}
	sink := writeback.New(writeback.Config{
		Window: cfg.Window, BatchSize: cfg.BatchSize, MaxAttempts: cfg.MaxAttempts,
		BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax, RateLimitBackoff: cfg.RateLimitBackoff,
		PauseProbe: cfg.PauseProbe, ParkAfter: cfg.ParkAfter, RetryCodes: cfg.RetryCodes, Shops: cfg.Shops, Tracer: tr.Tracer,
		Limiter: limiter,
	}, client, &writeback.RedisStore{C: rdb, Prefix: cfg.RedisPrefix, TTL: cfg.StateTTL},
		(&dispatch.Results{Topic: cfg.TopicResults, Prod: prod}).Report, writeback.NewMetrics(reg), log)
	dm := dispatch.NewMetrics(reg)

	shopNames := make([]string, 0, len(cfg.Shops))
	for n := range cfg.Shops {
		shopNames = append(shopNames, n)
	}
	sort.Strings(shopNames)
	log.Info("dispatcher starting", zap.String("topic", cfg.TopicStatus),
		zap.String("group", cfg.GroupID), zap.Int("routes", len(cfg.Table.Routes)), zap.Strings("shops", shopNames),
		zap.String("dangdang_url", cfg.APIURL), zap.Duration("window", cfg.Window), zap.Int("batch_size", cfg.BatchSize))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.Serve(gctx, cfg.OpsAddr, ops.Handler(reg, ready)) })
	lag := kafkaio.NewLag(reg)
	g.Go(func() error {
		lag.Watch(gctx, cfg.Kafka, cfg.GroupID, cfg.TopicStatus, 10*time.Second)
		return nil
	})
	// One admin client for the readiness probe, so probing does not log in again each time.
	probe := cfg.Kafka.NewClientFor(3*time.Second, topics...)
	defer probe.Close()
	g.Go(func() error {
		service.Watch(gctx, ready, "kafka", 2*time.Second, log, func(ctx context.Context) error { return probe.Ping(ctx) })
		return nil
	})
	g.Go(func() error {
		service.Watch(gctx, ready, "redis", 2*time.Second, log, func(ctx context.Context) error { return cfg.Redis.Ping(ctx, rdb) })
		return nil
	})
	g.Go(func() error {
		// Start even while Kafka is down: wait for the topics with backoff, not ready meanwhile.
		if err := cfg.PrepareTopics(gctx, ready, "kafka", log, topicSpecs(cfg)...); err != nil {
			return nil // stopped while waiting
		}
		// A routed topic that is missing or denied stops the service here, naming it.
		if err := dispatch.CheckTopics(gctx, probe.Client, topics, ready, log); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return err
		}
		linger := cfg.FetchLinger
		if linger == 0 {
			linger = -1 // none: FetchReader's zero is its default
		}
		reader := cfg.Kafka.NewFetchReader(kafkaio.ReaderConfig{GroupID: cfg.GroupID, Topic: cfg.TopicStatus, FetchLinger: linger})
		defer reader.Close()
		d := dispatch.New(dispatch.Config{InputTopic: cfg.TopicStatus, ResultsTopic: cfg.TopicResults, DLQTopic: cfg.TopicDLQ,
			MaxInFlight: cfg.MaxInFlight, MaxPartitionSpan: cfg.MaxPartitionSpan, CommitInterval: cfg.CommitInterval, Grace: cfg.Grace, Tracing: tr},
			reader, cfg.Table, prod, sink, dm, ready, log)
		if err := d.Run(gctx); err != nil {
			return fmt.Errorf("dispatch: %w", err)
		}
		log.Info("dispatcher stopped")
		return nil
	})
	return g.Wait()
}

// topicNames is every topic the dispatcher reads or writes, each once.
func topicNames(cfg *config) []string {
	names := map[string]bool{cfg.TopicStatus: true, cfg.TopicResults: true, cfg.TopicDLQ: true}
	for _, r := range cfg.Table.Routes {
		if r.To.Topic != "" {
			names[r.To.Topic] = true
		}
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	return out
}

// topicSpecs are the topics the dispatcher creates: every topic it reads or writes, and the
// three kind topics even when no route names them.
func topicSpecs(cfg *config) []kafkaio.TopicSpec {
	var specs []kafkaio.TopicSpec
	for _, n := range dedup(append(topicNames(cfg), cfg.TopicDelivery, cfg.TopicLifecycle, cfg.TopicRefund)) {
		specs = append(specs, kafkaio.TopicSpec{Name: n, Partitions: cfg.TopicPartitions})
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs
}

func dedup(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
