// Package replay re-drives records back into the pipeline: dead letters from callbacks.dlq.v1 or
// orders.status.dlq.v1 to the topic they came from, or raw callbacks from callbacks.raw.v1 by time
// range, platform or order id. Replays are safe because the pipeline is idempotent downstream:
// the normalizer's dedup and deterministic event ids absorb a callback it has seen, the order
// guard stops an old one from moving an order backwards, and the dispatcher's last-sent state per
// Dangdang order keeps a result from being sent twice.
//
// A run reads each partition of the source from the first offset at or after Since up to the end
// offset it saw when it started (so it ends even while producers keep writing), filters, and
// writes the survivors with their key, value and headers, less the dead-letter headers, plus
// replay_source (topic/partition/offset) so a replayed record can be traced to its origin.
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/schemas"
)

// HeaderReplaySource names the record a replayed record was copied from: "topic/partition/offset".
const HeaderReplaySource = "replay_source"

// Options select what to replay and where to.
type Options struct {
	// Conn is the Kafka connection (brokers, TLS, SASL), as the services use it.
	Conn kafkaio.Conn
	// From is the source topic.
	From string
	// To is the target topic. Empty means each record's dlq_topic header (dead letters only).
	To string
	// Since and Until bound the records' timestamps; zero means unbounded.
	Since, Until time.Time
	// Platform keeps records whose key starts with "platform:".
	Platform string
	// OrderID keeps records whose key is "<platform>:<OrderID>".
	OrderID string
	// Reason keeps dead letters whose dlq_reason header equals it.
	Reason string
	// Limit stops after this many matching records; 0 means no limit.
	Limit int
	// DryRun reports what would be replayed and writes nothing.
	DryRun bool
	// Out receives the report.
	Out io.Writer
}

// Result counts what a run did.
type Result struct {
	Scanned  int
	Matched  int
	Written  int
	ByTarget map[string]int
	ByReason map[string]int
}

// ErrNoTarget is returned for a record with no target: no To, and no dlq_topic header.
var ErrNoTarget = errors.New("record has no target topic: give -to, or replay from a DLQ whose records carry dlq_topic")

// Run replays according to o.
func Run(ctx context.Context, o Options) (Result, error) {
	res := Result{ByTarget: map[string]int{}, ByReason: map[string]int{}}
	if o.Out == nil {
		o.Out = io.Discard
	}
	client := o.Conn.NewClient(10 * time.Second)
	ranges, err := partitionRanges(ctx, client, o.From, o.Since)
	client.Close()
	if err != nil {
		return res, o.Conn.Explain(err)
	}
	var w *kafka.Writer
	if !o.DryRun {
		w = o.Conn.NewWriter(kafkaio.WriterConfig{})
		defer w.Close()
	}
	for _, pr := range ranges {
		if pr.start >= pr.end {
			continue
		}
		done, err := replayPartition(ctx, o, pr, w, &res)
		if err != nil {
			return res, err
		}
		if done {
			break
		}
	}
	report(o, res)
	return res, nil
}

// listOffsetsPatience bounds how long a listing of offsets is retried on temporary errors.
const listOffsetsPatience = 30 * time.Second

// unlessTemporary marks err permanent for retry.Do unless asking again can help
// (kafkaio.Retriable: Kafka calls it temporary, or it is not a Kafka error but a network one).
func unlessTemporary(err error) error {
	if !kafkaio.Retriable(err) {
		return retry.Permanent(err)
	}
	return err
}

type partitionRange struct {
	partition  int
	start, end int64
}

// partitionRanges returns, per partition, the first offset at or after since and the end offset
// now (one past the last record).
func partitionRanges(ctx context.Context, client *kafkaio.Client, topic string, since time.Time) ([]partitionRange, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return nil, fmt.Errorf("topic %s: %v", topic, md.Topics)
	}
	var starts, ends []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		ends = append(ends, kafka.LastOffsetOf(p.ID))
		if since.IsZero() {
			starts = append(starts, kafka.FirstOffsetOf(p.ID))
		} else {
			starts = append(starts, kafka.TimeOffsetOf(p.ID, since))
		}
	}
	// A partition's leader can be unknown for a moment (a topic just created, a leader moving):
	// such answers (kafka-go's temporary errors: Not Leader For Partition, Leader Not
	// Available, …) and network errors are asked again for up to listOffsetsPatience; any other
	// error ends the replay at once.
	list := func(reqs []kafka.OffsetRequest) (out map[int]kafka.PartitionOffsets, err error) {
		lctx, cancel := context.WithTimeout(ctx, listOffsetsPatience)
		defer cancel()
		err = retry.Do(lctx, retry.Policy{Min: 50 * time.Millisecond, Max: time.Second}, func(ctx context.Context) error {
			r, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
			if err != nil {
				return unlessTemporary(fmt.Errorf("list offsets of %s: %w", topic, err))
			}
			out = map[int]kafka.PartitionOffsets{}
			for _, po := range r.Topics[topic] {
				if po.Error != nil {
					return unlessTemporary(fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, po.Error))
				}
				out[po.Partition] = po
			}
			return nil
		}, nil)
		return out, err
	}
	s, err := list(starts)
	if err != nil {
		return nil, err
	}
	e, err := list(ends)
	if err != nil {
		return nil, err
	}
	var out []partitionRange
	for p, po := range e {
		end := po.LastOffset
		start := s[p].FirstOffset
		if !since.IsZero() {
			// A time lookup answers in Offsets: the first offset whose timestamp is at or after
			// since, or nothing (or -1) when there is none.
			start = end
			for off := range s[p].Offsets {
				if off >= 0 && off < start {
					start = off
				}
			}
		}
		out = append(out, partitionRange{partition: p, start: start, end: end})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].partition < out[j].partition })
	return out, nil
}

// replayPartition copies the matching records of one partition range. It reports done when the
// limit was reached.
func replayPartition(ctx context.Context, o Options, pr partitionRange, w *kafka.Writer, res *Result) (bool, error) {
	r := o.Conn.NewReader(kafkaio.ReaderConfig{Topic: o.From, Partition: pr.partition})
	defer r.Close()
	if err := r.SetOffset(pr.start); err != nil {
		return false, fmt.Errorf("seek %s/%d to %d: %w", o.From, pr.partition, pr.start, err)
	}
	var batch []kafka.Message
	flush := func() error {
		if len(batch) == 0 || w == nil {
			batch = batch[:0]
			return nil
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return fmt.Errorf("write replayed records: %w", err)
		}
		res.Written += len(batch)
		batch = batch[:0]
		return nil
	}
	for off := pr.start; off < pr.end; {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return false, fmt.Errorf("read %s/%d@%d: %w", o.From, pr.partition, off, err)
		}
		off = m.Offset + 1
		res.Scanned++
		if !o.Until.IsZero() && m.Time.After(o.Until) {
			break
		}
		if !matches(o, m) {
			continue
		}
		out, err := copyOf(o, m)
		if err != nil {
			return false, fmt.Errorf("%s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
		}
		res.Matched++
		res.ByTarget[out.Topic]++
		if reason := kafkaio.Header(m, schemas.HeaderDLQReason); reason != "" {
			res.ByReason[reason]++
		}
		if o.DryRun {
			fmt.Fprintf(o.Out, "would replay %s/%d@%d key=%s reason=%q -> %s\n", m.Topic, m.Partition, m.Offset, m.Key,
				kafkaio.Header(m, schemas.HeaderDLQReason), out.Topic)
		}
		batch = append(batch, out)
		if len(batch) >= 500 {
			if err := flush(); err != nil {
				return false, err
			}
		}
		if o.Limit > 0 && res.Matched >= o.Limit {
			return true, flush()
		}
	}
	return false, flush()
}

func matches(o Options, m kafka.Message) bool {
	key := string(m.Key)
	if o.Platform != "" && !strings.HasPrefix(key, o.Platform+":") {
		return false
	}
	if o.OrderID != "" {
		_, id, ok := strings.Cut(key, ":")
		if !ok || id != o.OrderID {
			return false
		}
	}
	if o.Reason != "" && kafkaio.Header(m, schemas.HeaderDLQReason) != o.Reason {
		return false
	}
	return true
}

// copyOf is the record to write: same key and value, the dead-letter headers dropped, the origin
// named in replay_source.
func copyOf(o Options, m kafka.Message) (kafka.Message, error) {
	target := o.To
	if target == "" {
		target = kafkaio.Header(m, schemas.HeaderDLQTopic)
	}
	if target == "" {
		return kafka.Message{}, ErrNoTarget
	}
	var hs []kafka.Header
	for _, h := range m.Headers {
		if strings.HasPrefix(h.Key, "dlq_") || h.Key == HeaderReplaySource {
			continue
		}
		hs = append(hs, h)
	}
	hs = append(hs, kafka.Header{Key: HeaderReplaySource, Value: fmt.Appendf(nil, "%s/%d/%d", m.Topic, m.Partition, m.Offset)})
	return kafka.Message{Topic: target, Key: m.Key, Value: m.Value, Headers: hs}, nil
}

func report(o Options, res Result) {
	verb := "replayed"
	if o.DryRun {
		verb = "would replay (dry run, nothing written)"
	}
	fmt.Fprintf(o.Out, "scanned %d records of %s; %s %d\n", res.Scanned, o.From, verb, res.Matched)
	for _, t := range sortedKeys(res.ByTarget) {
		fmt.Fprintf(o.Out, "  to %-28s %d\n", t, res.ByTarget[t])
	}
	for _, r := range sortedKeys(res.ByReason) {
		fmt.Fprintf(o.Out, "  reason %-24s %d\n", r, res.ByReason[r])
	}
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
