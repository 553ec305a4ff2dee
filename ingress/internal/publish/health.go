package publish

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/service"
	"github.com/orderpipe/pipeline/schemas"
)

// HealthConfig configures Watch.
type HealthConfig struct {
	Conn     kafkaio.Conn
	Topic    string
	Interval time.Duration
	// EnsureTopic creates Topic (Partitions, replicated as Replication says) until that
	// succeeds once (TOPIC_AUTO_CREATE).
	EnsureTopic bool
	Partitions  int
	Replication kafkaio.Replication
}

// Watch asks Kafka every Interval whether it answers and has the topic, reports the answer to
// p.SetHealth, and returns when ctx ends. The ingress starts and serves even while Kafka is down;
// this loop is what makes it ready, and ready again after an outage.
func Watch(ctx context.Context, p *Publisher, c HealthConfig, log *zap.Logger) {
	client := c.Conn.NewClientFor(3*time.Second, c.Topic) // not every topic of the cluster, every second
	defer client.Close()
	ensured := !c.EnsureTopic
	var last error = errors.New("not checked yet")
	checked := false // the topic's replication, logged once when it is too low
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		if !ensured {
			ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
			factor, minInsync, err := c.Conn.EnsureReplicatedTopics(ectx, c.Replication, kafkaio.TopicSpec{
				Name: c.Topic, Partitions: c.Partitions,
				Configs: map[string]string{"max.message.bytes": strconv.Itoa(schemas.RawMaxMessageBytes)},
			})
			cancel()
			if err == nil {
				ensured = true
				log.Info("topic ensured", zap.String("topic", c.Topic), zap.Int("replication_factor", factor), zap.Int("min_insync_replicas", minInsync))
			} else if ctx.Err() == nil {
				p.SetHealth(err)
				service.LogUnreachable(log, "ensure topic", err, zap.String("topic", c.Topic))
			}
		}
		err := check(ctx, client, c.Topic)
		if ctx.Err() != nil {
			return
		}
		p.SetHealth(err)
		if (err == nil) != (last == nil) {
			if err == nil {
				log.Info("kafka reachable", zap.String("topic", c.Topic))
			} else {
				service.LogUnreachable(log, "kafka unreachable", err, zap.String("topic", c.Topic))
			}
		}
		last = err
		if !checked && err == nil {
			checked = checkReplication(ctx, c, log)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func check(ctx context.Context, client *kafkaio.Client, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return client.Ping(ctx, topic)
}

// checkReplication logs the topic at error level when the cluster could replicate it safely but
// does not; it reports whether it could ask.
//
// It runs in Watch's loop, so it gets 3 s, as a ping does: DescribeReplication asks again while a
// broker restarts, and a longer wait would hold the readiness probe's next check back.
func checkReplication(ctx context.Context, c HealthConfig, log *zap.Logger) bool {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return c.Conn.CheckReplication(cctx, log, c.Topic) == nil
}
