package kafkaio

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// GroupLag returns, per partition of topic, how many records the consumer group has not committed
// yet: the partition's end offset minus the group's committed offset (minus the first offset when
// the group has committed nothing there). It asks the broker, as KEDA does, so it also sees a
// consumer that is stuck or gone.
func (c Conn) GroupLag(ctx context.Context, group, topic string) (map[int]int64, error) {
	client := c.NewClient(5 * time.Second)
	defer client.Close()
	return groupLag(ctx, client, group, topic)
}

// GroupLag is Plaintext(brokers...).GroupLag, for tests.
func GroupLag(ctx context.Context, brokers []string, group, topic string) (map[int]int64, error) {
	return Plaintext(brokers...).GroupLag(ctx, group, topic)
}

func groupLag(ctx context.Context, client *Client, group, topic string) (map[int]int64, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return nil, fmt.Errorf("topic %s: not found", topic)
	}
	var parts []int
	var ends, starts []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		parts = append(parts, p.ID)
		ends = append(ends, kafka.LastOffsetOf(p.ID))
		starts = append(starts, kafka.FirstOffsetOf(p.ID))
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, fmt.Errorf("committed offsets of %s: %w", group, err)
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: append(ends, starts...)}})
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	first, last := map[int]int64{}, map[int]int64{}
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		if po.FirstOffset >= 0 {
			first[po.Partition] = po.FirstOffset
		}
		if po.LastOffset >= 0 {
			last[po.Partition] = po.LastOffset
		}
	}
	lag := map[int]int64{}
	for _, p := range parts {
		lag[p] = last[p] - first[p]
	}
	for _, po := range committed.Topics[topic] {
		if po.Error == nil && po.CommittedOffset >= 0 {
			lag[po.Partition] = max(0, last[po.Partition]-po.CommittedOffset)
		}
	}
	return lag, nil
}

// NewLagGauge returns the gauge WatchLag sets: <service>_consumer_lag_records{partition}.
func NewLagGauge(service string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: service + "_consumer_lag_records",
		Help: "Records of the input topic not yet committed by the consumer group, per partition, as the broker sees it.",
	}, []string{"partition"})
}

// WatchLag is Plaintext(brokers...).WatchLag, for tests.
func WatchLag(ctx context.Context, brokers []string, group, topic string, interval time.Duration, g *prometheus.GaugeVec) {
	Plaintext(brokers...).WatchLag(ctx, group, topic, interval, g)
}

// WatchLag sets g from GroupLag every interval until ctx ends. Errors leave the last values.
// One client (one transport) serves every round, closed when ctx ends.
func (c Conn) WatchLag(ctx context.Context, group, topic string, interval time.Duration, g *prometheus.GaugeVec) {
	client := c.NewClient(5 * time.Second)
	defer client.Close()
	for {
		cctx, cancel := context.WithTimeout(ctx, interval)
		lag, err := groupLag(cctx, client, group, topic)
		cancel()
		if err == nil {
			for p, n := range lag {
				g.WithLabelValues(strconv.Itoa(p)).Set(float64(n))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
