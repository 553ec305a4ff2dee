package chaos

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/schemas"
)

// Topics are the topics the collector reads; a topic left empty is not read.
type Topics struct {
	Raw, RawDLQ, Status, Results, StatusDLQ string
	// Routed are the dispatcher's destination topics to read too (records are status events).
	Routed []string
}

// StatusRec is one record of the unified status topic as the collector saw it.
type StatusRec struct {
	Ev        schemas.StatusEvent
	Partition int
	Offset    int64
	SeenAt    time.Time
	// WrittenAt is the record's timestamp: when the normalizer handed it to its producer
	// (kafkaio.Producer stamps it). With SeenAt it splits the delay to the collector into the
	// pipeline's part and the reading's.
	WrittenAt time.Time
}

// RawRec is one raw (or raw DLQ) record, reduced to what the checks need.
type RawRec struct {
	OrderID string
	Body    []byte
	Reason  string // dlq_reason header on the DLQ
}

// ResultRec is one dangdang.results.v1 record, decoded leniently.
type ResultRec struct {
	Key     string
	Outcome string
	OrderID string
	Events  []string
	SeenAt  time.Time
	Raw     string
}

// Collector reads every partition of the topics from the start, without a consumer group, for
// the whole run, and keeps what it saw.
type Collector struct {
	mu        sync.Mutex
	Status    []StatusRec
	Raw       []RawRec
	RawDLQ    []RawRec
	Results   []ResultRec
	StatusDLQ []string
	DecodeErr []string
	last      time.Time
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	// Routed holds the records of each routed topic, as Status does.
	Routed map[string][]StatusRec
}

// StartCollector starts reading; Stop ends it.
func StartCollector(conn kafkaio.Conn, tp Topics, partitions int) *Collector {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Collector{cancel: cancel, last: time.Now(), Routed: map[string][]StatusRec{}}
	type source struct {
		topic  string
		handle func(kafka.Message, time.Time)
	}
	sources := []source{
		{tp.Status, c.onStatus}, {tp.Raw, c.onRaw}, {tp.RawDLQ, c.onRawDLQ}, {tp.Results, c.onResult}, {tp.StatusDLQ, c.onStatusDLQ},
	}
	for _, topic := range tp.Routed {
		sources = append(sources, source{topic, func(m kafka.Message, now time.Time) { c.onRouted(topic, m, now) }})
	}
	all := make([]int, partitions)
	for p := range all {
		all[p] = p
	}
	for _, t := range sources {
		if t.topic == "" {
			continue // not read: its checks see no records
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.read(ctx, conn, t.topic, all, t.handle)
		}()
	}
	return c
}

func (c *Collector) read(ctx context.Context, conn kafkaio.Conn, topic string, partitions []int, handle func(kafka.Message, time.Time)) {
	// No group: one reader of every partition from the first offset (one fetch request per
	// broker, as the services read), retrying through broker restarts.
	r := conn.NewFetchReader(kafkaio.ReaderConfig{Topic: topic, MaxBytes: 8 << 20, MaxWait: 200 * time.Millisecond,
		StartOffset: kafka.FirstOffset, MaxAttempts: 1 << 30}, partitions...)
	defer r.Close()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			continue // the reader goes on trying; only a reader that keeps failing says so
		}
		now := time.Now()
		c.mu.Lock()
		handle(m, now)
		c.last = now
		c.mu.Unlock()
	}
}

func (c *Collector) onStatus(m kafka.Message, now time.Time) {
	var ev schemas.StatusEvent
	if err := json.Unmarshal(m.Value, &ev); err != nil {
		c.DecodeErr = append(c.DecodeErr, "status: "+err.Error())
		return
	}
	c.Status = append(c.Status, StatusRec{Ev: ev, Partition: m.Partition, Offset: m.Offset, SeenAt: now, WrittenAt: m.Time})
}

func (c *Collector) onRouted(topic string, m kafka.Message, now time.Time) {
	var ev schemas.StatusEvent
	if err := json.Unmarshal(m.Value, &ev); err != nil {
		c.DecodeErr = append(c.DecodeErr, topic+": "+err.Error())
		return
	}
	c.Routed[topic] = append(c.Routed[topic], StatusRec{Ev: ev, Partition: m.Partition, Offset: m.Offset, SeenAt: now})
}

func decodeRaw(m kafka.Message) RawRec {
	var env struct {
		OrderID string `json:"order_id"`
		Body    []byte `json:"body"`
	}
	_ = json.Unmarshal(m.Value, &env)
	rr := RawRec{OrderID: env.OrderID, Body: env.Body}
	for _, h := range m.Headers {
		if h.Key == schemas.HeaderDLQReason {
			rr.Reason = string(h.Value)
		}
	}
	if rr.Body == nil {
		rr.Body = m.Value
	}
	return rr
}

func (c *Collector) onRaw(m kafka.Message, _ time.Time)    { c.Raw = append(c.Raw, decodeRaw(m)) }
func (c *Collector) onRawDLQ(m kafka.Message, _ time.Time) { c.RawDLQ = append(c.RawDLQ, decodeRaw(m)) }

func (c *Collector) onResult(m kafka.Message, now time.Time) {
	var v struct {
		Outcome  string   `json:"outcome"`
		OrderID  string   `json:"order_id"`
		EventIDs []string `json:"event_ids"`
	}
	_ = json.Unmarshal(m.Value, &v)
	c.Results = append(c.Results, ResultRec{Key: string(m.Key), Outcome: v.Outcome, OrderID: v.OrderID, Events: v.EventIDs, SeenAt: now, Raw: string(m.Value)})
}

func (c *Collector) onStatusDLQ(m kafka.Message, _ time.Time) {
	c.StatusDLQ = append(c.StatusDLQ, string(m.Key)+" "+string(m.Value))
}

// Quiet is how long the collector has seen no record.
func (c *Collector) Quiet() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Since(c.last)
}

// Stop ends the readers.
func (c *Collector) Stop() {
	c.cancel()
	c.wg.Wait()
}

// with runs f under the collector's lock.
func (c *Collector) with(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

// Inspect runs f with the collector locked: f may read its fields.
func (c *Collector) Inspect(f func(c *Collector)) { c.with(func() { f(c) }) }

// Reset forgets what was collected so far (after a warm-up).
func (c *Collector) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Status, c.Raw, c.RawDLQ, c.Results, c.StatusDLQ, c.DecodeErr = nil, nil, nil, nil, nil, nil
	c.Routed = map[string][]StatusRec{}
}

// Counts returns how many status and Dangdang result records were seen so far.
func (c *Collector) Counts() (status, results int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.Status), len(c.Results)
}
