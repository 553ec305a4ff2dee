// Package service is the part of configuration and start-up that the ingress, the normalizer and
// the dispatcher share: the Kafka connection (brokers, TLS, SASL), topic creation and its
// replication, the ops address and the log level. Each service's config.go embeds Config and adds
// its own settings; Redis (redisio.Config) is added by the services that use it.
//
// The start-up helpers here make a service start even while a dependency is down: it is not
// ready, says why in /readyz and in an error-level log line naming the variable to check, and
// keeps trying with the one retry policy (plumbing/retry). A service never falls back to
// plaintext or to no authentication.
package service

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/retry"
)

// Config is the common part of every service's configuration.
type Config struct {
	// Kafka is the connection: KAFKA_BROKERS, KAFKA_TLS*, KAFKA_SASL_*.
	Kafka kafkaio.Conn
	// Replication is TOPIC_REPLICATION_FACTOR and TOPIC_MIN_INSYNC_REPLICAS.
	Replication kafkaio.Replication
	// TopicAutoCreate is TOPIC_AUTO_CREATE (default true).
	TopicAutoCreate bool
	// TopicPartitions is TOPIC_PARTITIONS (default 12).
	TopicPartitions int
	// OpsAddr is OPS_ADDR, the port of /healthz, /readyz and /metrics.
	OpsAddr string
	// LogLevel is LOG_LEVEL.
	LogLevel string
}

// Load reads the common variables through l; opsAddr is the service's default OPS_ADDR.
func Load(l *envconfig.Loader, opsAddr string) Config {
	return Config{
		Kafka:           kafkaio.LoadConn(l),
		Replication:     kafkaio.LoadReplication(l),
		TopicAutoCreate: l.Bool("TOPIC_AUTO_CREATE", true),
		TopicPartitions: l.Int("TOPIC_PARTITIONS", 12, 1, 10000),
		OpsAddr:         l.Addr("OPS_ADDR", opsAddr),
		LogLevel:        l.Level("LOG_LEVEL", "info"),
	}
}

// Readiness is where a service reports a dependency's state (ops.Readiness satisfies it).
type Readiness interface{ Set(name string, err error) }

// StartPolicy is the backoff of start-up waits: creating topics, the first reach of a dependency.
var StartPolicy = retry.Policy{Min: 200 * time.Millisecond, Max: 10 * time.Second}

// PrepareTopics makes the service's topics ready to use. With TOPIC_AUTO_CREATE it creates the
// missing ones, replicated as c.Replication says for the brokers the cluster reports, retrying
// until that works or ctx ends; while it fails, check is not ready and each failure is logged
// with the variable to check. Then, created or not, it checks how the topics are replicated and
// logs at error level every topic the cluster could replicate safely but does not.
// It returns ctx's error when ctx ended first.
func (c Config) PrepareTopics(ctx context.Context, ready Readiness, check string, log *zap.Logger, specs ...kafkaio.TopicSpec) error {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	if c.TopicAutoCreate {
		err := retry.Do(ctx, StartPolicy, func(ctx context.Context) error {
			tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			factor, minInsync, err := c.Kafka.EnsureReplicatedTopics(tctx, c.Replication, specs...)
			if err != nil {
				return err
			}
			log.Info("topics ensured", zap.Strings("topics", names), zap.Int("replication_factor", factor), zap.Int("min_insync_replicas", minInsync))
			return nil
		}, func(err error, wait time.Duration) {
			ready.Set(check, err)
			LogUnreachable(log, "ensure topics", err, zap.Duration("retry_in", wait))
		})
		if err != nil {
			return ctx.Err()
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Kafka.CheckReplication(cctx, log, names...); err != nil && ctx.Err() == nil {
		log.Warn("check topic replication", zap.Error(err))
	}
	return ctx.Err()
}

// LogUnreachable logs a dependency failure at error level with, when known, the variable the
// operator should check (an *envconfig.VarError names it).
func LogUnreachable(log *zap.Logger, msg string, err error, fields ...zap.Field) {
	if v := Variable(err); v != "" {
		fields = append(fields, zap.String("variable", v))
	}
	log.Error(msg, append(fields, zap.Error(err))...)
}

// Variable returns the variable an error names (an *envconfig.VarError), or "".
func Variable(err error) string {
	var named interface{ VariableName() string }
	if errors.As(err, &named) {
		return named.VariableName()
	}
	return ""
}

// Watch calls probe every interval until ctx ends and reports its result as check: the
// dependency's readiness while no record flows. A change of state is logged once: an error
// with the variable to check, a recovery at info.
func Watch(ctx context.Context, ready Readiness, check string, interval time.Duration, log *zap.Logger, probe func(context.Context) error) {
	var last error = errors.New("not checked yet")
	first := true
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, min(interval, 3*time.Second)+time.Second)
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		ready.Set(check, err)
		switch {
		case err != nil && (first || last == nil || err.Error() != last.Error()):
			LogUnreachable(log, check+" unreachable", err)
		case err == nil && (first || last != nil):
			log.Info(check + " reachable")
		}
		last, first = err, false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
