package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/retry"
)

// Replication is how the topics a service creates are replicated. One broker lost must not lose
// a record the pipeline acknowledged: with writers at RequireAll, a factor of 3 and
// min.insync.replicas 2 keep every acknowledged record on two brokers at least.
type Replication struct {
	// Factor is TOPIC_REPLICATION_FACTOR (default 3), capped at the brokers the cluster reports.
	Factor int
	// MinInsync is TOPIC_MIN_INSYNC_REPLICAS (default 2), capped at Factor-1, at least 1.
	MinInsync int
}

// LoadReplication reads TOPIC_REPLICATION_FACTOR and TOPIC_MIN_INSYNC_REPLICAS through l.
func LoadReplication(l *envconfig.Loader) Replication {
	r := Replication{
		Factor:    l.Int("TOPIC_REPLICATION_FACTOR", 3, 1, 32),
		MinInsync: l.Int("TOPIC_MIN_INSYNC_REPLICAS", 2, 1, 32),
	}
	if r.MinInsync > r.Factor {
		l.Fail("TOPIC_MIN_INSYNC_REPLICAS", "%d is above TOPIC_REPLICATION_FACTOR %d: no write could ever succeed", r.MinInsync, r.Factor)
	}
	return r
}

// For returns the replication factor and min.insync.replicas to create topics with on a cluster
// of brokers brokers: the factor capped at brokers, min.insync.replicas capped at factor-1 (so
// one replica may be down without stopping writes) and at least 1.
func (r Replication) For(brokers int) (factor, minInsync int) {
	factor = max(1, min(r.Factor, brokers))
	minInsync = max(1, min(r.MinInsync, factor-1))
	return factor, minInsync
}

// EnsureTopics creates the topics that do not exist yet, replicated as r says for the number
// of brokers the cluster reports now. A spec's own min.insync.replicas config, if any, wins.
// It returns the factor and min.insync.replicas it used.
func (c Conn) EnsureReplicatedTopics(ctx context.Context, r Replication, topics ...TopicSpec) (factor, minInsync int, err error) {
	n, err := c.BrokerCount(ctx)
	if err != nil {
		return 0, 0, err
	}
	factor, minInsync = r.For(n)
	specs := make([]TopicSpec, len(topics))
	for i, t := range topics {
		cfg := map[string]string{"min.insync.replicas": strconv.Itoa(minInsync)}
		for k, v := range t.Configs {
			cfg[k] = v
		}
		t.ReplicationFactor, t.Configs = factor, cfg
		specs[i] = t
	}
	return factor, minInsync, c.EnsureTopics(ctx, specs...)
}

// BrokerCount returns how many brokers the cluster has, as far as its metadata shows
// (brokersIn): the brokers it lists, or more when a partition has more replicas.
func (c Conn) BrokerCount(ctx context.Context) (int, error) {
	client := c.NewClient(10 * time.Second)
	defer client.Close()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{}) // every topic: their replica lists
	if err != nil {
		return 0, c.Explain(fmt.Errorf("kafka metadata: %w", err))
	}
	return brokersIn(md), nil
}

// brokersIn counts the brokers a metadata response shows: those it lists, which are only the
// brokers up, or, when more, the most replicas any partition has. A broker that is down (one of
// three in a rolling restart) still holds its replicas, so it counts: topics created then get
// the factor the cluster is meant to have (KRaft's controller places followers on a broker that
// is down; they catch up when it is back) instead of one replica and one in-sync replica less
// for good. Only a cluster holding no topic yet undercounts.
func brokersIn(md *kafka.MetadataResponse) int {
	n := len(md.Brokers)
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			n = max(n, len(p.Replicas))
		}
	}
	return n
}

// TopicReplication is how one topic is replicated.
type TopicReplication struct {
	Topic string
	// Factor is the smallest replica count of the topic's partitions.
	Factor int
	// MinInsync is the topic's min.insync.replicas (its own or the broker default).
	MinInsync int
}

// UnderReplicated returns the topics that a cluster of brokers brokers could replicate safely
// but that are not: with 3 brokers or more, a factor below 3 or min.insync.replicas below 2.
// A smaller cluster cannot do better, so nothing is reported for it.
func UnderReplicated(brokers int, topics []TopicReplication) []TopicReplication {
	if brokers < 3 {
		return nil
	}
	var out []TopicReplication
	for _, t := range topics {
		if t.Factor < 3 || t.MinInsync < 2 {
			out = append(out, t)
		}
	}
	return out
}

// DescribeReplication returns the broker count and, per topic, its replication factor and
// min.insync.replicas, from the cluster's metadata and DescribeConfigs. A topic created a moment
// ago may not be known to every broker yet, and a broker may be restarting (connection refused
// or reset: one broker of three in a rolling restart): those are asked again until ctx ends. An
// error a broker says is final (authentication, authorisation), a TLS failure and an unknown
// host are returned at once: asking again would only hide the setting to fix.
func (c Conn) DescribeReplication(ctx context.Context, topics ...string) (brokers int, out []TopicReplication, err error) {
	client := c.NewClient(10 * time.Second)
	defer client.Close()
	err = retry.Do(ctx, retry.Policy{Min: 100 * time.Millisecond, Max: time.Second}, func(ctx context.Context) error {
		brokers, out, err = describeReplication(ctx, c, client, topics)
		if err == nil {
			return nil
		}
		var dns *net.DNSError
		final := errors.As(err, &dns) || envconfig.SuspectTLS("KAFKA", "broker", err) != ""
		if Retriable(err) && !final {
			return err
		}
		return retry.Permanent(err)
	}, nil)
	return brokers, out, err
}

func describeReplication(ctx context.Context, c Conn, client *Client, topics []string) (brokers int, out []TopicReplication, err error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return 0, nil, c.Explain(fmt.Errorf("kafka metadata: %w", err))
	}
	req := &kafka.DescribeConfigsRequest{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return 0, nil, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		factor := 0
		for i, p := range t.Partitions {
			if i == 0 || len(p.Replicas) < factor {
				factor = len(p.Replicas)
			}
		}
		out = append(out, TopicReplication{Topic: t.Name, Factor: factor})
		req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: t.Name, ConfigNames: []string{"min.insync.replicas"},
		})
	}
	if len(out) == 0 {
		return brokersIn(md), nil, nil
	}
	res, err := client.DescribeConfigs(ctx, req)
	if err != nil {
		return 0, nil, c.Explain(fmt.Errorf("describe topic configs: %w", err))
	}
	minISR := map[string]int{}
	for _, r := range res.Resources {
		if r.Error != nil {
			return 0, nil, fmt.Errorf("describe config of %s: %w", r.ResourceName, r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "min.insync.replicas" {
				minISR[r.ResourceName], _ = strconv.Atoi(e.ConfigValue)
			}
		}
	}
	for i := range out {
		out[i].MinInsync = minISR[out[i].Topic]
	}
	return brokersIn(md), out, nil
}

// CheckReplication logs, at error level and once per topic, every topic of topics that the
// cluster could replicate safely but does not (UnderReplicated). It returns an error only when
// it could not ask.
func (c Conn) CheckReplication(ctx context.Context, log *zap.Logger, topics ...string) error {
	brokers, reps, err := c.DescribeReplication(ctx, topics...)
	if err != nil {
		return fmt.Errorf("check topic replication: %w", err)
	}
	for _, t := range UnderReplicated(brokers, reps) {
		log.Error("topic under-replicated: one broker lost can lose acknowledged records",
			zap.String("topic", t.Topic), zap.Int("replication_factor", t.Factor),
			zap.Int("min_insync_replicas", t.MinInsync), zap.Int("brokers", brokers))
	}
	return nil
}
