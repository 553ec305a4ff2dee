package publish

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
)

// HealthConfig configures Watch.
type HealthConfig struct {
	Brokers  []string
	Topic    string
	Interval time.Duration
	// EnsureTopic creates Topic (Partitions) until that succeeds once (TOPIC_AUTO_CREATE).
	EnsureTopic bool
	Partitions  int
}

// Watch asks Kafka every Interval whether it answers and has the topic, reports the answer to
// p.SetHealth, and returns when ctx ends. The ingress starts and serves even while Kafka is down;
// this loop is what makes it ready, and ready again after an outage.
func Watch(ctx context.Context, p *Publisher, c HealthConfig, log *zap.Logger) {
	tr := kafkaio.NewTransport()
	tr.MetadataTopics = []string{c.Topic} // not every topic of the cluster, every second
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: 3 * time.Second, Transport: tr}
	ensured := !c.EnsureTopic
	var last error = errors.New("not checked yet")
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		if !ensured {
			ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := ensureTopic(ectx, client, c.Topic, c.Partitions)
			cancel()
			if err == nil {
				ensured = true
				log.Info("topic ensured", zap.String("topic", c.Topic))
			} else if ctx.Err() == nil {
				log.Warn("ensure topic", zap.String("topic", c.Topic), zap.Error(err))
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
				log.Warn("kafka unreachable", zap.String("topic", c.Topic), zap.Error(err))
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func check(ctx context.Context, client *kafka.Client, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	res, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("kafka metadata: %w", err)
	}
	for _, t := range res.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return fmt.Errorf("topic %s: %w", topic, t.Error)
			}
			return nil
		}
	}
	return fmt.Errorf("topic %s: not in metadata", topic)
}

// ensureTopic creates topic unless it exists. It goes through the loop's own client, so no
// transport is left behind (kafkaio.EnsureTopics makes one per call).
func ensureTopic(ctx context.Context, client *kafka.Client, topic string, partitions int) error {
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if e := res.Errors[topic]; e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, e)
	}
	return nil
}
