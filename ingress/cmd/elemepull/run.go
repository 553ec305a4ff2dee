package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/orderpipe/pipeline/ingress/internal/elemeapi"
	"github.com/orderpipe/pipeline/ingress/internal/elemepull"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/logging"
	"github.com/orderpipe/pipeline/plumbing/ops"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/plumbing/service"
)

// checkKafka is the readiness check fed by the Kafka ping loop.
const checkKafka = "kafka"

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	c, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, err := logging.New(c.LogLevel, stdout)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("service", "elemepull"))

	reg := ops.NewRegistry()
	checks := []string{checkKafka, elemepull.CheckRedis}
	for _, a := range c.Apps {
		checks = append(checks, elemepull.CheckApp(a.AppID))
	}
	ready := ops.NewReadiness(checks...)
	c.Kafka.Log(log)
	c.Redis.Log(log)
	rdb, err := c.Redis.NewClient()
	if err != nil {
		return err
	}
	defer rdb.Close()
	writer := c.Kafka.NewWriter(kafkaio.WriterConfig{Topic: c.TopicRaw, WriteTimeout: c.WriteTimeout})
	defer func() {
		_ = writer.Close()
		// kafka-go closes only a Transport it made itself; this one is the plumbing's.
		if t, ok := writer.Transport.(*kafka.Transport); ok {
			t.CloseIdleConnections()
		}
	}()
	api := &elemeapi.Client{URL: c.APIURL, Timeout: c.APITimeout, HTTP: &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
	}}}
	p, err := elemepull.New(elemepull.Config{
		Apps: c.Apps, API: api, Writer: writer, Redis: rdb, KeyPrefix: c.KeyPrefix,
		Interval: c.Interval, PageSize: c.PageSize, LeaseTTL: c.LeaseTTL,
		Backoff:       retry.Policy{Min: c.BackoffMin, Max: c.BackoffMax},
		RateLimitWait: c.RateLimitWait,
		Metrics:       elemepull.NewMetrics(reg), Ready: ready, Log: log,
	})
	if err != nil {
		return err
	}
	ids := make([]string, len(c.Apps))
	for i, a := range c.Apps {
		ids[i] = a.AppID
	}
	log.Info("elemepull starting", zap.String("topic", c.TopicRaw),
		zap.String("api_url", c.APIURL), zap.Strings("apps", ids), zap.Duration("interval", c.Interval))

	opsCtx, stopOps := context.WithCancel(context.WithoutCancel(ctx))
	defer stopOps()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.Serve(opsCtx, c.OpsAddr, ops.Handler(reg, ready)) })
	g.Go(func() error {
		service.Watch(gctx, ready, checkKafka, 5*time.Second, log, c.Kafka.Ping)
		return nil
	})
	g.Go(func() error {
		defer func() {
			ready.Drain()
			stopOps()
		}()
		return p.Run(gctx)
	})
	err = g.Wait()
	log.Info("elemepull stopped")
	return err
}
