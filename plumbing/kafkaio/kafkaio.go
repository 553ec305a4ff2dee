// Package kafkaio builds kafka-go readers and writers with settings that are safe for this
// pipeline, whatever kafka-go's defaults are (see docs/specs/kafka-go.md):
//
//   - writers wait for every in-sync replica (RequireAll), key records with the Murmur2 balancer
//     (the Java client's partitioner, so one key is one partition everywhere), and batch for a few
//     milliseconds instead of kafka-go's one second;
//   - readers belong to a consumer group, never commit on their own (CommitInterval 0: callers use
//     FetchMessage and commit with CommitMessages once their output is durable), and notice a
//     departed member within about a second;
//   - every reader, writer and client gets its own Transport, so metadata of a topic created a
//     moment ago is not hidden behind a shared six-second cache; a Transport of a component that
//     works on known topics asks for their metadata only (NewTransportFor), not for every topic
//     of the cluster each second, which costs a broker with many topics milliseconds a request;
//   - everything is built from a Conn (LoadConn reads it from the environment), which carries TLS
//     and SASL: nothing in the project dials Kafka any other way, and a test checks that.
//
// The package-level NewWriter, NewReader, NewTransport, EnsureTopics and Ping take bare broker
// addresses and dial in plaintext: they are for tests against the plaintext test broker. Service
// code uses the Conn methods.
package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/schemas"
)

// DefaultBatchTimeout is how long a writer waits to fill a batch. kafka-go's default is 1 s,
// which a synchronous WriteMessages pays on every call.
const DefaultBatchTimeout = 2 * time.Millisecond

// WriterConfig configures NewWriter. Zero values take safe defaults.
type WriterConfig struct {
	// Brokers is read by the package-level NewWriter only; Conn.NewWriter uses the Conn's.
	Brokers []string
	// Topic is the writer's topic; empty means each message names its own.
	Topic string
	// BatchTimeout defaults to DefaultBatchTimeout.
	BatchTimeout time.Duration
	// BatchSize is the most messages per partition batch; default 1000.
	BatchSize int
	// WriteTimeout bounds one produce request; default 10 s.
	WriteTimeout time.Duration
	// MaxAttempts is how often kafka-go tries a batch; default 3.
	MaxAttempts int
	// BatchBytes caps one partition batch; default DefaultBatchBytes. A batch larger than the
	// topic's max.message.bytes is refused whole by the broker, so never raise it past that.
	BatchBytes int64
}

// DefaultBatchBytes keeps a batch under the broker's default max.message.bytes (1 MiB plus
// a little), with room for the record batch's own overhead.
const DefaultBatchBytes = 900 << 10

// NewWriter is Plaintext(c.Brokers...).NewWriter(c), for tests.
func NewWriter(c WriterConfig) *kafka.Writer { return Plaintext(c.Brokers...).NewWriter(c) }

// NewWriter returns a synchronous writer with RequireAll, the Murmur2 balancer and a short batch
// timeout, dialing through the Conn (TLS and SASL in its Transport). Topics are never
// auto-created by writes: they are created on purpose (EnsureTopics), with the partitions and
// settings the operator chose.
func (conn Conn) NewWriter(c WriterConfig) *kafka.Writer {
	w := &kafka.Writer{
		Addr:                   kafka.TCP(conn.Brokers...),
		Topic:                  c.Topic,
		Balancer:               &kafka.Murmur2Balancer{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           c.BatchTimeout,
		BatchSize:              c.BatchSize,
		BatchBytes:             c.BatchBytes,
		WriteTimeout:           c.WriteTimeout,
		ReadTimeout:            c.WriteTimeout,
		MaxAttempts:            c.MaxAttempts,
		WriteBackoffMin:        20 * time.Millisecond,
		WriteBackoffMax:        500 * time.Millisecond,
		AllowAutoTopicCreation: false,
		Transport:              conn.NewTransport(),
	}
	if c.Topic != "" {
		// Every message goes to Topic (kafka.Writer refuses one naming another).
		w.Transport = conn.NewTransportFor(c.Topic)
	}
	if w.BatchTimeout <= 0 {
		w.BatchTimeout = DefaultBatchTimeout
	}
	if w.BatchSize <= 0 {
		w.BatchSize = 1000
	}
	if w.BatchBytes <= 0 {
		w.BatchBytes = DefaultBatchBytes
	}
	if w.WriteTimeout <= 0 {
		w.WriteTimeout = 10 * time.Second
		w.ReadTimeout = 10 * time.Second
	}
	if w.MaxAttempts <= 0 {
		w.MaxAttempts = 3
	}
	return w
}

// NewTransport is Plaintext().NewTransport(), for tests.
func NewTransport() *kafka.Transport { return Plaintext().NewTransport() }

// ReaderConfig configures NewReader.
type ReaderConfig struct {
	// Brokers is read by the package-level NewReader only; Conn.NewReader uses the Conn's.
	Brokers []string
	// GroupID is the consumer group. Empty means a reader of one Partition, without a group
	// (tools and tests that read a partition from an offset they choose).
	GroupID   string
	Topic     string
	Partition int
	// MaxWait bounds how long the broker holds a fetch open waiting for data; default 250 ms.
	MaxWait time.Duration
	// MaxBytes is the most bytes one fetch returns; default 4 MiB.
	MaxBytes int
	// QueueCapacity (kafka.Reader only) is how many fetched messages are buffered ahead; default
	// 1000. FetchReader buffers up to 4 fetch responses.
	QueueCapacity int
	// StartOffset for a group with no committed offset: kafka.FirstOffset (default) or LastOffset.
	StartOffset int64
	// MaxAttempts is how often a failed fetch is retried before FetchMessage returns the error;
	// default 3. A reader that must outlive a broker restart sets it high.
	MaxAttempts int
	// FetchLinger (FetchReader only) is how long after a fetch that returned little the next
	// one starts, so that it carries what arrived meanwhile; default DefaultFetchLinger, a
	// negative value none.
	FetchLinger time.Duration
	// DrainTimeout (FetchReader with a group only) bounds how long, when a generation ends, the
	// reader waits for the records it handed out to be committed before it rejoins; default 3 s.
	DrainTimeout time.Duration
}

// The consumer-group timings of both readers (NewReader, NewFetchReader): a member that leaves
// is noticed within a heartbeat, one that dies within the session timeout.
const (
	groupHeartbeat      = time.Second
	groupSession        = 10 * time.Second
	groupRebalance      = 10 * time.Second
	groupJoinBackoff    = 500 * time.Millisecond
	groupPartitionWatch = 5 * time.Second
)

// NewReader is Plaintext(c.Brokers...).NewReader(c), for tests.
func NewReader(c ReaderConfig) *kafka.Reader { return Plaintext(c.Brokers...).NewReader(c) }

// NewReader returns a consumer-group reader that never commits by itself, dialing through the
// Conn (TLS and SASL in its Dialer). Callers use FetchMessage and CommitMessages after their
// output is durable: a crash replays, never skips.
func (conn Conn) NewReader(c ReaderConfig) *kafka.Reader {
	c = readerDefaults(c)
	rc := kafka.ReaderConfig{
		Brokers:                conn.Brokers,
		GroupID:                c.GroupID,
		Topic:                  c.Topic,
		MinBytes:               1,
		MaxBytes:               c.MaxBytes,
		MaxWait:                c.MaxWait,
		QueueCapacity:          c.QueueCapacity,
		CommitInterval:         0,
		HeartbeatInterval:      groupHeartbeat,
		SessionTimeout:         groupSession,
		RebalanceTimeout:       groupRebalance,
		JoinGroupBackoff:       groupJoinBackoff,
		ReadBackoffMin:         50 * time.Millisecond,
		ReadBackoffMax:         time.Second,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: groupPartitionWatch,
		StartOffset:            c.StartOffset,
		MaxAttempts:            c.MaxAttempts,
		Dialer:                 conn.NewDialer(),
	}
	if c.GroupID == "" {
		rc.Partition = c.Partition
		rc.WatchPartitionChanges, rc.PartitionWatchInterval = false, 0
	}
	return kafka.NewReader(rc)
}

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int
	// Configs are topic-level settings, e.g. "retention.ms", "min.insync.replicas".
	Configs map[string]string
}

// EnsureTopics is Plaintext(brokers...).EnsureTopics with each spec's own replication factor
// (1 when zero), for tests.
func EnsureTopics(ctx context.Context, brokers []string, topics ...TopicSpec) error {
	return Plaintext(brokers...).EnsureTopics(ctx, topics...)
}

// EnsureTopics creates the topics that do not exist yet; existing topics are left as they are.
// A spec's ReplicationFactor 0 means 1; services pass specs from Replication.Specs, which
// caps the wanted factor at the cluster's broker count and sets min.insync.replicas.
//
// It returns once every partition of the topics it created answers from its leader. The broker
// answers CreateTopics before the leaders have taken their partitions up, and until they have,
// a write gets Not Leader For Partition; kafka-go's writer retries that for well under a second
// (MaxAttempts with backoff) without asking for new metadata, so a write made straight after
// creating a topic on a busy broker failed. The wait is bounded by ctx (by readyWait without a
// deadline); its error names a partition still without a leader.
func (c Conn) EnsureTopics(ctx context.Context, topics ...TopicSpec) error {
	client := c.NewClient(10 * time.Second)
	defer client.Close()
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		tc := kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: t.ReplicationFactor}
		if tc.NumPartitions <= 0 {
			tc.NumPartitions = 1
		}
		if tc.ReplicationFactor <= 0 {
			tc.ReplicationFactor = 1
		}
		for k, v := range t.Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		req.Topics = append(req.Topics, tc)
	}
	res, err := client.CreateTopics(ctx, req)
	if err != nil {
		return c.Explain(fmt.Errorf("create topics: %w", err))
	}
	var errs []error
	created := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}} // each partition created
	for _, tc := range req.Topics {
		switch e := res.Errors[tc.Topic]; {
		case e == nil:
			for p := range tc.NumPartitions {
				created.Topics[tc.Topic] = append(created.Topics[tc.Topic], kafka.FirstOffsetOf(p))
			}
		case !errors.Is(e, kafka.TopicAlreadyExists):
			errs = append(errs, fmt.Errorf("create topic %s: %w", tc.Topic, e))
		}
	}
	if len(created.Topics) > 0 {
		errs = append(errs, awaitLeaders(ctx, client, created))
	}
	return errors.Join(errs...)
}

// leaderless returns the first reason a ListOffsets answer shows a partition not yet served by
// its leader, or nil when every partition answered. Only the election window is waited out: a
// partition error asking again cannot help (not Retriable: an ACL refusing Describe, say) ends
// the wait, and the first write reports it as it always did.
func leaderless(res *kafka.ListOffsetsResponse, err error) error {
	if err != nil {
		return err
	}
	for topic, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil && Retriable(p.Error) {
				return fmt.Errorf("topic %s partition %d: %w", topic, p.Partition, p.Error)
			}
		}
	}
	return nil
}

// readyWait bounds awaitLeaders when ctx has no deadline.
const readyWait = 30 * time.Second

// awaitLeaders asks each partition of req for its first offset, which only the partition's
// leader answers, about every 50 ms (the project's retry policy, jittered) until every one
// answers without an error: then the leaders have taken the partitions up, and a write to any
// of them is accepted.
func awaitLeaders(ctx context.Context, client *Client, req *kafka.ListOffsetsRequest) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readyWait)
		defer cancel()
	}
	err := retry.Do(ctx, retry.Policy{Min: 50 * time.Millisecond, Max: 50 * time.Millisecond}, func(ctx context.Context) error {
		return leaderless(client.ListOffsets(ctx, req))
	}, nil)
	if err != nil {
		return client.Explain(fmt.Errorf("topics created, but not ready: %w", err))
	}
	return nil
}

// Ping is Plaintext(brokers...).Ping, for tests.
func Ping(ctx context.Context, brokers []string) error { return Plaintext(brokers...).Ping(ctx) }

// Header returns the value of the first header named key, or "".
func Header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// maxDLQError bounds the dlq_error header: an error text is for a person, not a dump.
const maxDLQError = 1024

// DeadLetter returns the dead-letter copy of src: its key, value and headers unchanged, less any
// dead-letter headers it carried from an earlier trip (readers take the first header of a name),
// plus the contract's dlq_* headers saying why (reason, a bounded code; detail, the error text),
// where from (src's topic, partition, offset), which service, and when.
func DeadLetter(src kafka.Message, service, reason, detail string, at time.Time) kafka.Message {
	h := make([]kafka.Header, 0, len(src.Headers)+7)
	for _, sh := range src.Headers {
		if !strings.HasPrefix(sh.Key, "dlq_") {
			h = append(h, sh)
		}
	}
	if len(detail) > maxDLQError {
		detail = detail[:maxDLQError]
	}
	h = append(h,
		kafka.Header{Key: schemas.HeaderDLQReason, Value: []byte(reason)},
		kafka.Header{Key: schemas.HeaderDLQError, Value: []byte(detail)},
		kafka.Header{Key: schemas.HeaderDLQService, Value: []byte(service)},
		kafka.Header{Key: schemas.HeaderDLQTime, Value: []byte(schemas.At(at).String())},
		kafka.Header{Key: schemas.HeaderDLQTopic, Value: []byte(src.Topic)},
		kafka.Header{Key: schemas.HeaderDLQPartition, Value: []byte(strconv.Itoa(src.Partition))},
		kafka.Header{Key: schemas.HeaderDLQOffset, Value: []byte(strconv.FormatInt(src.Offset, 10))},
	)
	return kafka.Message{Key: src.Key, Value: src.Value, Headers: h}
}
