package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/orderpipe/pipeline/ingress/internal/publish"
	"github.com/orderpipe/pipeline/ingress/internal/server"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/logging"
	"github.com/orderpipe/pipeline/plumbing/ops"
	"github.com/orderpipe/pipeline/schemas"
)

// listeners lets tests bind ports of their own; nil means listen on the configured addresses.
type listeners struct{ http, ops net.Listener }

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	return runWith(ctx, getenv, stdout, listeners{})
}

func runWith(ctx context.Context, getenv func(string) string, stdout io.Writer, ls listeners) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, err := logging.New(cfg.LogLevel, stdout)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("service", "ingress"))
	cfg.Kafka.Log(log)
	if len(cfg.DianwodaSecrets) == 0 {
		log.Warn("DIANWODA_SECRETS is not set: the Dianwoda route answers 503")
	}
	if len(cfg.ElemeSecrets) == 0 {
		log.Warn("ELEME_SECRETS is not set: the Eleme route answers 503")
	}

	if ls.http == nil {
		if ls.http, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listen HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
		}
	}
	if ls.ops == nil {
		if ls.ops, err = net.Listen("tcp", cfg.OpsAddr); err != nil {
			ls.http.Close()
			return fmt.Errorf("listen OPS_ADDR %s: %w", cfg.OpsAddr, err)
		}
	}

	reg := ops.NewRegistry()
	ready := ops.NewReadiness(publish.CheckName)
	// One produce request per broker for every partition's records (kafkaio.Producer), not one
	// per partition batch as kafka.Writer sends: the broker's cost per callback is its cost per
	// request divided by the records in it (docs/performance.md).
	writer := cfg.Kafka.NewProducer(kafkaio.ProducerConfig{
		// Its transport asks for this topic's metadata only (kafkaio.NewTransportFor).
		Topic:        cfg.TopicRaw,
		WriteTimeout: cfg.WriteTimeout,
		// A record at INGRESS_MAX_BODY is larger than plumbing's default batch cap; the raw
		// topic allows schemas.RawMaxMessageBytes, less room for the batch's own framing.
		BatchBytes: schemas.RawMaxMessageBytes - 16<<10,
	})
	reg.MustRegister(writer.Collectors("ingress_kafka")...)
	pub := publish.New(writer, publish.Config{MaxInflight: cfg.MaxInflight, WriteTimeout: cfg.WriteTimeout}, ready, reg)
	opsHandler := ops.Handler(reg, ready)
	srv := server.New(server.Config{
		MaxBody:         cfg.MaxBody,
		MaxBodyMemory:   cfg.MaxBodyMemory,
		DianwodaSecrets: cfg.DianwodaSecrets,
		ElemeSecrets:    cfg.ElemeSecrets,
		Publisher:       pub,
		Ready:           ready.Err,
		Log:             log,
		AcceptedLog:     cfg.AcceptedLog,
		Registry:        reg,
	})
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}

	// The ops server outlives the callback server: /readyz says "draining" while in-flight
	// callbacks finish, and answers until the writer is flushed.
	opsCtx, stopOps := context.WithCancel(context.WithoutCancel(ctx))
	defer stopOps()
	healthCtx, stopHealth := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHealth()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.ServeListener(opsCtx, ls.ops, opsHandler) })
	g.Go(func() error {
		publish.Watch(healthCtx, pub, publish.HealthConfig{
			Conn: cfg.Kafka, Topic: cfg.TopicRaw, Interval: cfg.PingInterval,
			EnsureTopic: cfg.TopicAutoCreate, Partitions: cfg.TopicPartitions, Replication: cfg.Replication,
		}, log)
		return nil
	})
	g.Go(func() error {
		log.Info("listening", zap.String("http_addr", ls.http.Addr().String()), zap.String("ops_addr", ls.ops.Addr().String()), zap.String("topic", cfg.TopicRaw))
		if err := httpSrv.Serve(ls.http); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		ready.Drain()
		log.Info("draining", zap.Duration("delay", cfg.DrainDelay))
		if cfg.DrainDelay > 0 {
			time.Sleep(cfg.DrainDelay)
		}
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		var errs []error
		if err := httpSrv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		if err := pub.Close(); err != nil {
			errs = append(errs, err)
		}
		stopHealth()
		stopOps()
		log.Info("stopped")
		return errors.Join(errs...)
	})
	return g.Wait()
}
