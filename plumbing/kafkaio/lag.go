package kafkaio

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// PartitionOffsets is what the broker knows of one partition for one consumer group.
type PartitionOffsets struct {
	// Committed is the group's committed offset, -1 when it has committed nothing there.
	Committed int64
	// End is the partition's end offset (the next offset to be written).
	End int64
	// Lag is End minus Committed, or End minus the first offset when nothing is committed.
	Lag int64
}

// GroupOffsets returns, per partition of topic, the group's committed offset, the end offset
// and the lag between them, as the broker sees them (as KEDA does): it also sees a consumer that
// is stuck or gone, which a lag computed by the consumer itself cannot.
func (c Conn) GroupOffsets(ctx context.Context, group, topic string) (map[int]PartitionOffsets, error) {
	client := c.NewClientFor(5*time.Second, topic)
	defer client.Close()
	return groupOffsets(ctx, client, group, topic)
}

// GroupOffsets is Plaintext(brokers...).GroupOffsets, for tests.
func GroupOffsets(ctx context.Context, brokers []string, group, topic string) (map[int]PartitionOffsets, error) {
	return Plaintext(brokers...).GroupOffsets(ctx, group, topic)
}

func groupOffsets(ctx context.Context, client *Client, group, topic string) (map[int]PartitionOffsets, error) {
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
	out := make(map[int]PartitionOffsets, len(parts))
	for _, p := range parts {
		out[p] = PartitionOffsets{Committed: -1, End: last[p], Lag: last[p] - first[p]}
	}
	for _, po := range committed.Topics[topic] {
		if po.Error == nil && po.CommittedOffset >= 0 {
			o := out[po.Partition]
			o.Committed, o.Lag = po.CommittedOffset, max(0, o.End-po.CommittedOffset)
			out[po.Partition] = o
		}
	}
	return out, nil
}

// GroupLag returns, per partition of topic, how many records the consumer group has not
// committed yet (GroupOffsets' Lag).
func (c Conn) GroupLag(ctx context.Context, group, topic string) (map[int]int64, error) {
	offs, err := c.GroupOffsets(ctx, group, topic)
	if err != nil {
		return nil, err
	}
	lag := make(map[int]int64, len(offs))
	for p, o := range offs {
		lag[p] = o.Lag
	}
	return lag, nil
}

// GroupLag is Plaintext(brokers...).GroupLag, for tests.
func GroupLag(ctx context.Context, brokers []string, group, topic string) (map[int]int64, error) {
	return Plaintext(brokers...).GroupLag(ctx, group, topic)
}

// Lag exports a consumer group's position as the broker sees it, per group, topic and
// partition:
//
//	orderpipe_consumer_group_lag_records         end offset − committed offset
//	orderpipe_consumer_group_committed_offset    the committed offset (a stuck consumer: flat while lag > 0)
//	orderpipe_consumer_group_lag_updated_seconds unix time of the last successful query
//
// Every replica of a service exports the same broker-side numbers for its group, so rules and
// panels take max by (group, topic, partition) first: the group is counted once, whatever the
// number of replicas (a sum over replicas would count it once per replica).
type Lag struct {
	records, committed *prometheus.GaugeVec
	updated            prometheus.Gauge
	total              atomic.Int64
	known              atomic.Bool
}

// NewLag returns a Lag with its gauges registered in reg.
func NewLag(reg prometheus.Registerer) *Lag {
	l := &Lag{
		records: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "orderpipe_consumer_group_lag_records",
			Help: "Records of the input topic not yet committed by the consumer group (end offset minus committed offset), as the broker sees it."},
			[]string{"group", "topic", "partition"}),
		committed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "orderpipe_consumer_group_committed_offset",
			Help: "The consumer group's committed offset, as the broker sees it (-1 before its first commit)."},
			[]string{"group", "topic", "partition"}),
		updated: prometheus.NewGauge(prometheus.GaugeOpts{Name: "orderpipe_consumer_group_lag_updated_seconds",
			Help: "Unix time of the last successful query of the group's offsets."}),
	}
	reg.MustRegister(l.records, l.committed, l.updated)
	return l
}

// Watch queries the group's offsets through c every interval until ctx ends and sets the
// gauges. A failed query leaves the last values (and the updated time) as they were. One client
// (one transport) serves every round, closed when ctx ends.
func (l *Lag) Watch(ctx context.Context, c Conn, group, topic string, interval time.Duration) {
	client := c.NewClientFor(5*time.Second, topic)
	defer client.Close()
	for {
		cctx, cancel := context.WithTimeout(ctx, interval)
		offs, err := groupOffsets(cctx, client, group, topic)
		cancel()
		if err == nil {
			var total int64
			for p, o := range offs {
				ps := strconv.Itoa(p)
				l.records.WithLabelValues(group, topic, ps).Set(float64(o.Lag))
				l.committed.WithLabelValues(group, topic, ps).Set(float64(o.Committed))
				total += o.Lag
			}
			l.total.Store(total)
			l.known.Store(true)
			l.updated.SetToCurrentTime()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Backlog returns the group's total lag at the last successful query; ok is false before one.
func (l *Lag) Backlog() (records int64, ok bool) {
	return l.total.Load(), l.known.Load()
}
