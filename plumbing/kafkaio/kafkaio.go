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
//     moment ago is not hidden behind a shared six-second cache.
package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/schemas"
)

// DefaultBatchTimeout is how long a writer waits to fill a batch. kafka-go's default is 1 s,
// which a synchronous WriteMessages pays on every call.
const DefaultBatchTimeout = 2 * time.Millisecond

// WriterConfig configures NewWriter. Zero values take safe defaults.
type WriterConfig struct {
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

// NewWriter returns a synchronous writer with RequireAll, the Murmur2 balancer and a short batch
// timeout. Topics are never auto-created by writes: they are created on purpose (EnsureTopics),
// with the partitions and settings the operator chose.
func NewWriter(c WriterConfig) *kafka.Writer {
	w := &kafka.Writer{
		Addr:                   kafka.TCP(c.Brokers...),
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
		Transport:              NewTransport(),
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

// NewTransport returns a Transport of its own with a short metadata TTL, so that a component
// does not share kafka-go's DefaultTransport and its stale metadata cache.
func NewTransport() *kafka.Transport {
	return &kafka.Transport{
		Dial:        (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		IdleTimeout: 30 * time.Second,
		MetadataTTL: time.Second,
		ClientID:    "orderpipe",
	}
}

// ReaderConfig configures NewReader.
type ReaderConfig struct {
	Brokers []string
	GroupID string
	Topic   string
	// MaxWait bounds how long the broker holds a fetch open waiting for data; default 250 ms.
	MaxWait time.Duration
	// MaxBytes is the most bytes one fetch returns; default 4 MiB.
	MaxBytes int
	// QueueCapacity is how many fetched messages are buffered ahead; default 1000.
	QueueCapacity int
	// StartOffset for a group with no committed offset: kafka.FirstOffset (default) or LastOffset.
	StartOffset int64
}

// NewReader returns a consumer-group reader that never commits by itself. Callers use
// FetchMessage and CommitMessages after their output is durable: a crash replays, never skips.
func NewReader(c ReaderConfig) *kafka.Reader {
	if c.MaxWait <= 0 {
		c.MaxWait = 250 * time.Millisecond
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 4 << 20
	}
	if c.QueueCapacity <= 0 {
		c.QueueCapacity = 1000
	}
	if c.StartOffset == 0 {
		c.StartOffset = kafka.FirstOffset
	}
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:                c.Brokers,
		GroupID:                c.GroupID,
		Topic:                  c.Topic,
		MinBytes:               1,
		MaxBytes:               c.MaxBytes,
		MaxWait:                c.MaxWait,
		QueueCapacity:          c.QueueCapacity,
		CommitInterval:         0,
		HeartbeatInterval:      time.Second,
		SessionTimeout:         10 * time.Second,
		RebalanceTimeout:       10 * time.Second,
		JoinGroupBackoff:       500 * time.Millisecond,
		ReadBackoffMin:         50 * time.Millisecond,
		ReadBackoffMax:         time.Second,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		StartOffset:            c.StartOffset,
		MaxAttempts:            3,
		Dialer: &kafka.Dialer{
			Timeout:   5 * time.Second,
			DualStack: true,
			ClientID:  "orderpipe",
		},
	})
}

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int
	// Configs are topic-level settings, e.g. "retention.ms", "min.insync.replicas".
	Configs map[string]string
}

// EnsureTopics creates the topics that do not exist yet; existing topics are left as they are.
func EnsureTopics(ctx context.Context, brokers []string, topics ...TopicSpec) error {
	transport := NewTransport()
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: transport}
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
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	for name, e := range res.Errors {
		if e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", name, e))
		}
	}
	return errors.Join(errs...)
}

// Ping asks the cluster for its metadata: nil means a broker answered within ctx. Its connections
// are closed before it returns, so a readiness loop that pings every few seconds leaks nothing.
func Ping(ctx context.Context, brokers []string) error {
	transport := NewTransport()
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 3 * time.Second, Transport: transport}
	_, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return fmt.Errorf("kafka metadata: %w", err)
	}
	return nil
}

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
