package kafkaio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	produceapi "github.com/segmentio/kafka-go/protocol/produce"
)

// Producer writes records with acks=all, as kafka.Writer does, but puts the batches of every
// partition led by one broker into ONE produce request, as the Java client and sarama do.
// kafka-go's Writer sends one request per partition batch; on a co-located broker the cost of a
// request, not of a record, dominates (shared/bench: 69 µs of broker CPU per callback through
// the Writer against 24 µs through sarama), so fewer, larger requests are what make the ingress
// cheap. It is built on kafka-go's protocol layer (Transport.RoundTrip with a produce.Request of
// many partitions), so it stays inside the design card's client.
//
// Batching is natural: while a broker has a request in flight, records bound for it gather;
// when the request returns, everything gathered goes in the next one. A lone record is sent at
// once, so latency at low rates is one round trip, and batches grow with the rate. With Linger
// set, a broker's next request also waits until Linger after its last one was sent, unless
// LingerBytes have gathered for it: at moderate rates, where a round trip gathers a record or
// two, that caps a broker's requests at one per Linger (Kafka's own producer lingers 5 ms by
// default since 4.0); under heavy load LingerBytes gather within a round trip and nothing waits.
//
// Guarantees:
//   - WriteMessages returns nil only when every one of its records was acknowledged by all
//     in-sync replicas (RequireAll).
//   - Records go to the partition kafka.Murmur2Balancer picks (the Java client's), so keys map
//     to the same partitions as through kafka.Writer.
//   - One partition is never in two requests at once, and a batch that failed with a retriable
//     error is put back at the head of its partition: the records of one partition reach the
//     log in the order they were queued (possibly more than once after a retry, never reordered).
//   - A record whose caller's context ended before it was sent is not sent; one that was in
//     flight when the context ended may still be written (as with kafka.Writer, kafka-go #1427).
type Producer struct {
	cfg       ProducerConfig
	allowed   []string // the topics it may write (nil: any)
	addr      net.Addr
	transport *kafka.Transport
	client    *kafka.Client

	metaMu sync.Mutex
	meta   atomic.Pointer[metaSnapshot]

	mu        sync.Mutex
	staleMeta bool // a retriable error was seen: read the metadata again before the next send
	queues    map[topicPartition]*partitionQueue
	inflight  map[int32]bool      // broker id → a request is in flight
	lastSent  map[int32]time.Time // broker id → when its last request started (for Linger)
	closed    bool
	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}

	requests atomic.Int64
	batches  atomic.Int64
	records  atomic.Int64
}

// ProducerConfig configures NewProducer.
type ProducerConfig struct {
	// Brokers is read by the package-level NewProducer only; Conn.NewProducer uses the Conn's.
	Brokers []string
	// Topic is used for messages that name none.
	Topic string
	// Topics are the topics the Producer may write besides Topic. When Topic or Topics is set,
	// the Producer's own Transport asks the brokers for their metadata only
	// (Conn.NewTransportFor), and a message naming another topic is refused; when neither is
	// set, it asks for every topic of the cluster. Ignored when Transport is given.
	Topics []string
	// Transport carries the connection settings (TLS, SASL): Conn.NewProducer sets it from the
	// Conn when nil; the package-level NewProducer (tests) uses a plaintext one. The Producer
	// closes its idle connections on Close.
	Transport *kafka.Transport
	// BatchBytes caps the records of one partition in one request; default DefaultBatchBytes
	// (a batch larger than the topic's max.message.bytes is refused whole by the broker).
	BatchBytes int
	// RequestBytes caps one request; default 8 MiB (the broker's socket.request.max.bytes is
	// 100 MiB).
	RequestBytes int
	// WriteTimeout is the broker-side timeout of one request (acks wait); default 10 s.
	WriteTimeout time.Duration
	// RetryBackoff is the pause of a partition after a retriable error; default 50 ms.
	RetryBackoff time.Duration
	// Linger is the least time between the starts of two requests to one broker while less
	// than LingerBytes of records wait for it; 0 (default) sends as soon as the broker has no
	// request in flight. A record waits at most Linger more than without it. Conn.NewProducer
	// fills it in from KAFKA_PRODUCER_LINGER (ConnSettings.ProducerLinger) when zero.
	Linger time.Duration
	// LingerBytes ends a Linger early: records of at least this size waiting for a broker go at
	// once; default DefaultLingerBytes.
	LingerBytes int
}

// DefaultLingerBytes is ProducerConfig.LingerBytes's default (the Java producer's batch.size).
const DefaultLingerBytes = 16 << 10

// ProducerStats counts what the Producer sent.
type ProducerStats struct {
	Requests int64 // produce requests sent
	Batches  int64 // partition batches in them
	Records  int64 // records in them
}

// ErrProducerClosed is returned for writes after Close.
var ErrProducerClosed = errors.New("kafka producer closed")

type topicPartition struct {
	topic     string
	partition int32
}

type partitionQueue struct {
	records   []*pending
	busy      bool      // in a request now
	notBefore time.Time // retry backoff
	// solo is how many of the next records go one per batch: after the broker refused a batch
	// as too large, each of its records is tried alone, so one oversized record fails only its
	// own caller.
	solo int
}

type pending struct {
	msg  kafka.Message // Key, Value, Headers, Time (set)
	size int
	call *writeCall
}

// writeCall is one WriteMessages: done closes when every record has an outcome.
type writeCall struct {
	ctx       context.Context
	remaining atomic.Int32
	once      sync.Once
	err       error
	errMu     sync.Mutex
	done      chan struct{}
}

func (c *writeCall) finish(err error) {
	if err != nil {
		c.errMu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.errMu.Unlock()
	}
	if c.remaining.Add(-1) == 0 {
		c.once.Do(func() { close(c.done) })
	}
}

// NewProducer returns a running Producer over the Conn's brokers, TLS and SASL; Close it.
func (conn Conn) NewProducer(c ProducerConfig) *Producer {
	c.Brokers = conn.Brokers
	if c.Linger == 0 {
		c.Linger = conn.settings.ProducerLinger
	}
	if c.Transport == nil {
		c.Transport = conn.transportFor(c.allowed())
	}
	return newProducer(c)
}

// NewProducer is Plaintext(c.Brokers...).NewProducer(c), for tests.
func NewProducer(c ProducerConfig) *Producer {
	return Plaintext(c.Brokers...).NewProducer(c)
}

// allowed is Topic and Topics, or nil (any topic) when neither is set.
func (c ProducerConfig) allowed() []string {
	if c.Topic == "" && len(c.Topics) == 0 {
		return nil
	}
	out := slices.Clone(c.Topics)
	if c.Topic != "" && !slices.Contains(out, c.Topic) {
		out = append(out, c.Topic)
	}
	return out
}

// transportFor is NewTransportFor(topics...), or NewTransport when topics is nil.
func (c Conn) transportFor(topics []string) *kafka.Transport {
	if topics == nil {
		return c.NewTransport()
	}
	return c.NewTransportFor(topics...)
}

func newProducer(c ProducerConfig) *Producer {
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.RequestBytes <= 0 {
		c.RequestBytes = 8 << 20
	}
	if c.RequestBytes < c.BatchBytes {
		c.RequestBytes = c.BatchBytes
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 50 * time.Millisecond
	}
	if c.LingerBytes <= 0 {
		c.LingerBytes = DefaultLingerBytes
	}
	addr := kafka.TCP(c.Brokers...)
	p := &Producer{
		cfg:       c,
		allowed:   c.allowed(),
		addr:      addr,
		transport: c.Transport,
		// Metadata requests through a Transport are answered from its cache, the same view it
		// routes produce requests by, so grouping partitions by leader agrees with routing.
		client:   &kafka.Client{Addr: addr, Transport: c.Transport, Timeout: c.WriteTimeout},
		queues:   map[topicPartition]*partitionQueue{},
		inflight: map[int32]bool{},
		lastSent: map[int32]time.Time{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go p.loop()
	return p
}

// Stats returns what was sent so far.
func (p *Producer) Stats() ProducerStats {
	return ProducerStats{Requests: p.requests.Load(), Batches: p.batches.Load(), Records: p.records.Load()}
}

// Collectors are counters of what the Producer sent, for a service's registry:
// <prefix>_produce_requests_total, _produce_batches_total (partition batches in them) and
// _produce_records_total. Records per request is what a co-located broker's CPU per record
// follows (docs/performance.md), and what shows whether batching works at the current rate.
func (p *Producer) Collectors(prefix string) []prometheus.Collector {
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: prefix + "_produce_" + name + "_total", Help: help},
			func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		counter("requests", "Produce requests sent (one per broker, carrying every partition's batch).", &p.requests),
		counter("batches", "Partition batches in the produce requests sent.", &p.batches),
		counter("records", "Records in the produce requests sent (a retried record counts again).", &p.records),
	}
}

// WriteMessages writes msgs (each naming its Topic) and returns nil once all are acknowledged
// by every in-sync replica, or the first error. See Producer for what an error means.
func (p *Producer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	var one [1]topicPartition // a lone message (the ingress's every call) routes without allocating
	routed, err := p.route(ctx, msgs, one[:0])
	if err != nil {
		return err
	}
	var call *writeCall
	var lone *pending
	if len(msgs) == 1 {
		// The call and its one record in one allocation.
		both := &struct {
			call writeCall
			pd   pending
		}{}
		call, lone = &both.call, &both.pd
	} else {
		call = &writeCall{}
	}
	call.ctx, call.done = ctx, make(chan struct{})
	call.remaining.Store(int32(len(msgs)))
	now := time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrProducerClosed
	}
	for i, m := range msgs {
		if m.Time.IsZero() {
			m.Time = now
		}
		pd := lone
		if pd == nil {
			pd = &pending{}
		}
		*pd = pending{msg: m, size: recordSize(m), call: call}
		q := p.queues[routed[i]]
		if q == nil {
			q = &partitionQueue{}
			p.queues[routed[i]] = q
		}
		q.records = append(q.records, pd)
	}
	wake := p.wakeNeeded(routed)
	p.mu.Unlock()
	if wake {
		p.poke()
	}
	select {
	case <-call.done:
		call.errMu.Lock()
		defer call.errMu.Unlock()
		return call.err
	case <-ctx.Done():
		return fmt.Errorf("kafka write: %w", ctx.Err())
	}
}

// wakeNeeded reports whether the loop must look at the queues now that records for routed
// were added: not when every one's leader has a request in flight, since that request's
// settle wakes the loop after these records were queued (inflight is read and cleared under
// p.mu). Under load most writes find their broker busy, and a loop pass for each of them,
// which could start nothing, was the Producer's largest cost (a twentieth of the ingress's
// CPU at 16,000 callbacks/s). p.mu is held.
func (p *Producer) wakeNeeded(routed []topicPartition) bool {
	snap := p.meta.Load()
	if p.staleMeta || snap == nil {
		return true
	}
	for _, tp := range routed {
		leader, ok := snap.leaders[tp]
		if !ok || !p.inflight[leader] {
			return true
		}
	}
	return false
}

// route picks each message's partition with the Murmur2 balancer over the topic's partitions,
// appended to out.
func (p *Producer) route(ctx context.Context, msgs []kafka.Message, out []topicPartition) ([]topicPartition, error) {
	topics := make([]string, 0, 1)
	for i := range msgs {
		if msgs[i].Topic == "" {
			msgs[i].Topic = p.cfg.Topic
		}
		m := msgs[i]
		if m.Topic == "" {
			return nil, errors.New("kafka write: message without a topic")
		}
		if p.allowed != nil && !slices.Contains(p.allowed, m.Topic) {
			return nil, fmt.Errorf("kafka write: topic %s is not one of the producer's topics %v", m.Topic, p.allowed)
		}
		if !slices.Contains(topics, m.Topic) {
			topics = append(topics, m.Topic)
		}
	}
	snap, err := p.metadata(ctx, topics, false)
	if err != nil {
		return nil, err
	}
	var bal kafka.Murmur2Balancer
	for _, m := range msgs {
		tm := snap.topics[m.Topic]
		out = append(out, topicPartition{topic: m.Topic, partition: int32(bal.Balance(m, tm.partitions...))})
	}
	return out, nil
}

// metadataMaxAge is how long a snapshot is used before it is read again from the Transport's
// cache (which itself refreshes from the brokers every MetadataTTL).
const metadataMaxAge = 250 * time.Millisecond

type topicMeta struct {
	partitions []int // sorted ids, what the balancer picks from
}

type metaSnapshot struct {
	at      time.Time
	topics  map[string]*topicMeta
	leaders map[topicPartition]int32 // every partition that has a leader
}

func (s *metaSnapshot) fresh(topics []string) bool {
	if s == nil || time.Since(s.at) > metadataMaxAge {
		return false
	}
	for _, t := range topics {
		if s.topics[t] == nil {
			return false
		}
	}
	return true
}

// metadata returns a snapshot holding at least topics (every one must exist).
func (p *Producer) metadata(ctx context.Context, topics []string, force bool) (*metaSnapshot, error) {
	if s := p.meta.Load(); !force && s.fresh(topics) {
		return s, nil
	}
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	old := p.meta.Load()
	if !force && old.fresh(topics) {
		return old, nil
	}
	want := slices.Clone(topics)
	if old != nil {
		for t := range old.topics {
			if !slices.Contains(want, t) {
				want = append(want, t)
			}
		}
	}
	md, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: want})
	if err != nil {
		return nil, fmt.Errorf("kafka metadata: %w", err)
	}
	snap := &metaSnapshot{at: time.Now(), topics: map[string]*topicMeta{}, leaders: map[topicPartition]int32{}}
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			continue
		}
		tm := &topicMeta{}
		for _, pt := range t.Partitions {
			tm.partitions = append(tm.partitions, pt.ID)
			if pt.Error == nil && pt.Leader.ID >= 0 && pt.Leader.Host != "" {
				snap.leaders[topicPartition{t.Name, int32(pt.ID)}] = int32(pt.Leader.ID)
			}
		}
		slices.Sort(tm.partitions)
		snap.topics[t.Name] = tm
	}
	for _, t := range topics {
		if snap.topics[t] == nil {
			return nil, fmt.Errorf("kafka write: topic %s: %w", t, kafka.UnknownTopicOrPartition)
		}
	}
	p.meta.Store(snap)
	return snap, nil
}

func recordSize(m kafka.Message) int {
	n := len(m.Key) + len(m.Value) + 32
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value) + 8
	}
	return n
}

func (p *Producer) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Close fails what is still queued with ErrProducerClosed, waits for requests in flight and
// closes the connections. Call it after the last WriteMessages returned.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	p.transport.CloseIdleConnections()
	return nil
}

// loop sends a request to every broker that has records waiting and none in flight, whenever
// something changes (a write, a response, a backoff ending).
func (p *Producer) loop() {
	defer close(p.done)
	var wg sync.WaitGroup
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-p.stop:
			wg.Wait()
			p.failQueued(ErrProducerClosed)
			return
		case <-p.wake:
		case <-timer.C:
		}
		next := p.sendReady(&wg)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), 100*time.Microsecond))
		} else {
			timer.Reset(time.Hour)
		}
	}
}

func (p *Producer) failQueued(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for tp, q := range p.queues {
		for _, pd := range q.records {
			pd.call.finish(err)
		}
		delete(p.queues, tp)
	}
}

// request is one produce request being built for a broker.
type request struct {
	broker  int32
	size    int
	batches []batch
}

type batch struct {
	tp      topicPartition
	records []*pending
}

// sendReady starts the requests it can and returns when a backed-off partition is due (zero
// when none is waiting on a backoff).
func (p *Producer) sendReady(wg *sync.WaitGroup) (next time.Time) {
	leaders, err := p.leaders()
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	hold := p.lingering(leaders, now)
	for _, due := range hold {
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	reqs := map[int32]*request{}
	for tp, q := range p.queues {
		if len(q.records) == 0 {
			if !q.busy {
				delete(p.queues, tp)
			}
			continue
		}
		if q.busy {
			continue
		}
		if now.Before(q.notBefore) {
			if next.IsZero() || q.notBefore.Before(next) {
				next = q.notBefore
			}
			continue
		}
		leader, ok := leaders[tp]
		if err != nil || !ok {
			// No leader known (metadata refreshing, broker down): try again shortly.
			q.notBefore = now.Add(p.cfg.RetryBackoff)
			if next.IsZero() || q.notBefore.Before(next) {
				next = q.notBefore
			}
			continue
		}
		if p.inflight[leader] {
			continue // gathers until the broker's request returns
		}
		if _, ok := hold[leader]; ok {
			continue // gathers until the broker's linger ends
		}
		r := reqs[leader]
		if r == nil {
			r = &request{broker: leader}
			reqs[leader] = r
		}
		if r.size >= p.cfg.RequestBytes {
			continue
		}
		b := batch{tp: tp}
		size, taken := 0, 0
		for _, pd := range q.records {
			if err := pd.call.ctx.Err(); err != nil {
				// Its caller gave up before it was sent: it never is. Checked here, as it is
				// taken, not on every wake for every queued record (a sixtieth of the ingress's
				// CPU at 12,000 callbacks/s).
				pd.call.finish(fmt.Errorf("kafka write: %w", err))
				taken++
				continue
			}
			if len(b.records) > 0 && (q.solo > 0 || size+pd.size > p.cfg.BatchBytes || r.size+size+pd.size > p.cfg.RequestBytes) {
				break
			}
			b.records = append(b.records, pd)
			size += pd.size
			taken++
		}
		clear(q.records[:taken])
		q.records = q.records[taken:]
		if len(b.records) == 0 {
			continue
		}
		q.solo = max(q.solo-1, 0)
		q.busy = true
		r.size += size
		r.batches = append(r.batches, b)
	}
	for leader, r := range reqs {
		if len(r.batches) == 0 {
			continue // every record it would have carried was given up
		}
		p.inflight[leader] = true
		p.lastSent[leader] = now
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.send(r)
		}()
	}
	return next
}

// lingering returns, for every broker that must wait for its Linger (its last request started
// less than Linger ago and less than LingerBytes wait for it), when the wait ends. p.mu is held.
func (p *Producer) lingering(leaders map[topicPartition]int32, now time.Time) map[int32]time.Time {
	if p.cfg.Linger <= 0 {
		return nil
	}
	var waiting map[int32]int // bytes ready for each broker still inside its linger
	for tp, q := range p.queues {
		if q.busy || len(q.records) == 0 || now.Before(q.notBefore) {
			continue
		}
		leader, ok := leaders[tp]
		if !ok || p.inflight[leader] || !now.Before(p.lastSent[leader].Add(p.cfg.Linger)) {
			continue
		}
		if waiting == nil {
			waiting = map[int32]int{}
		}
		n := waiting[leader]
		for _, pd := range q.records {
			if n >= p.cfg.LingerBytes {
				break // enough: no need to count the rest
			}
			n += pd.size
		}
		waiting[leader] = n
	}
	var hold map[int32]time.Time
	for leader, n := range waiting {
		if n < p.cfg.LingerBytes {
			if hold == nil {
				hold = map[int32]time.Time{}
			}
			hold[leader] = p.lastSent[leader].Add(p.cfg.Linger)
		}
	}
	return hold
}

// leaders returns the leader of every partition that has one, for the topics queued now.
func (p *Producer) leaders() (map[topicPartition]int32, error) {
	p.mu.Lock()
	var topics []string
	for tp := range p.queues {
		if !slices.Contains(topics, tp.topic) {
			topics = append(topics, tp.topic)
		}
	}
	force := p.staleMeta
	p.staleMeta = false
	p.mu.Unlock()
	if len(topics) == 0 {
		return nil, nil
	}
	// No deadline of its own: metadata answers the usual case, a fresh snapshot, from memory, and
	// a request to the brokers is bounded by the client's Timeout (WriteTimeout). A context and
	// timer made on every wake only to be cancelled were a third of this function's CPU at
	// 15,000 callbacks/s.
	snap, err := p.metadata(context.Background(), topics, force)
	if err != nil {
		return nil, err
	}
	return snap.leaders, nil
}

// bytesReader is protocol.NewBytes's reader, made in place.
type bytesReader struct{ bytes.Reader }

func (*bytesReader) Close() error { return nil }

// of is r over b as a protocol.Bytes, or nil (a null value, as protocol.NewBytes gives) when b is nil.
func (r *bytesReader) of(b []byte) protocol.Bytes {
	if b == nil {
		return nil
	}
	r.Reset(b)
	return r
}

// recordReaders are one record's key and value readers.
type recordReaders struct{ key, value bytesReader }

// sendBuf holds the records of one produce request and their readers.
type sendBuf struct {
	recs    []kafka.Record
	readers []recordReaders
}

var sendBufs sync.Pool

// getSendBuf returns a sendBuf of n records.
func getSendBuf(n int) *sendBuf {
	b, _ := sendBufs.Get().(*sendBuf)
	if b == nil {
		b = &sendBuf{}
	}
	if cap(b.recs) < n {
		b.recs = make([]kafka.Record, n)
		b.readers = make([]recordReaders, n)
	}
	b.recs, b.readers = b.recs[:n], b.readers[:n]
	return b
}

// putSendBuf returns b to the pool, holding no record's bytes. A buffer of more than 4,096
// records (a backlog's) is left to the collector.
func putSendBuf(b *sendBuf) {
	if cap(b.recs) > 4096 {
		return
	}
	clear(b.recs)
	clear(b.readers)
	sendBufs.Put(b)
}

// send makes one round trip and settles every batch of r.
func (p *Producer) send(r *request) {
	req := &produceapi.Request{Acks: int16(kafka.RequireAll), Timeout: int32(p.cfg.WriteTimeout.Milliseconds())}
	n := 0
	for _, b := range r.batches {
		n += len(b.records)
	}
	// Records are built for each send: their Bytes are readers, consumed once. They come from a
	// pool and go back only after a round trip that succeeded, when the connection has written
	// the whole request: one that failed (a timeout) may still be read by its connection while
	// a retry is built, so its buffers are left to the collector.
	buf := getSendBuf(n)
	at := 0
	for _, b := range r.batches {
		recs := buf.recs[at : at+len(b.records)]
		readers := buf.readers[at : at+len(b.records)]
		at += len(b.records)
		for i, pd := range b.records {
			recs[i] = kafka.Record{Time: pd.msg.Time, Key: readers[i].key.of(pd.msg.Key), Value: readers[i].value.of(pd.msg.Value), Headers: pd.msg.Headers}
		}
		ti := slices.IndexFunc(req.Topics, func(t produceapi.RequestTopic) bool { return t.Topic == b.tp.topic })
		if ti < 0 {
			req.Topics = append(req.Topics, produceapi.RequestTopic{Topic: b.tp.topic})
			ti = len(req.Topics) - 1
		}
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, produceapi.RequestPartition{
			Partition: b.tp.partition,
			RecordSet: protocol.RecordSet{Version: 2, Records: protocol.NewRecordReader(recs...)},
		})
	}
	p.requests.Add(1)
	p.batches.Add(int64(len(r.batches)))
	p.records.Add(int64(n))

	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.WriteTimeout+5*time.Second)
	res, err := p.transport.RoundTrip(ctx, p.addr, req)
	cancel()
	if err == nil {
		putSendBuf(buf)
	}

	results := map[topicPartition]error{}
	if err == nil {
		pr, ok := res.(*produceapi.Response)
		if !ok {
			err = fmt.Errorf("kafka produce: unexpected response %T", res)
		} else {
			for _, t := range pr.Topics {
				for _, pt := range t.Partitions {
					var perr error
					if pt.ErrorCode != 0 {
						perr = kafka.Error(pt.ErrorCode)
					}
					results[topicPartition{t.Topic, pt.Partition}] = perr
				}
			}
		}
	}
	p.settle(r, results, err)
}

func (p *Producer) settle(r *request, results map[topicPartition]error, reqErr error) {
	now := time.Now()
	p.mu.Lock()
	delete(p.inflight, r.broker)
	for _, b := range r.batches {
		q := p.queues[b.tp]
		if q == nil { // cannot happen: a busy queue is never deleted
			q = &partitionQueue{}
			p.queues[b.tp] = q
		}
		q.busy = false
		err := reqErr
		if err == nil {
			var ok bool
			if err, ok = results[b.tp]; !ok {
				err = fmt.Errorf("kafka produce: no answer for %s/%d", b.tp.topic, b.tp.partition)
			}
		}
		switch {
		case err == nil:
			for _, pd := range b.records {
				pd.call.finish(nil)
			}
		case (errors.Is(err, kafka.MessageSizeTooLarge) || errors.Is(err, kafka.RecordListTooLarge)) && len(b.records) > 1 && !p.closed:
			q.records = append(b.records, q.records...)
			q.solo = len(b.records)
		case Retriable(err) && !p.closed:
			// Back at the head of the partition: order holds, the caller's context bounds it.
			q.records = append(b.records, q.records...)
			q.notBefore = now.Add(p.cfg.RetryBackoff)
			p.staleMeta = true
		default:
			for _, pd := range b.records {
				pd.call.finish(fmt.Errorf("kafka produce to %s/%d: %w", b.tp.topic, b.tp.partition, err))
			}
		}
	}
	p.mu.Unlock()
	p.poke()
}

// Retriable reports whether asking Kafka again can help after err: a broker's error code says
// (leader moved, not enough replicas yet, request timed out: yes; too large, invalid, denied:
// no, the callers fail at once). Any other error is the connection's or the Transport's (a
// broken connection, leaders moving while its metadata settles): asked again, bounded by the
// callers' contexts.
func Retriable(err error) bool {
	var kerr kafka.Error
	if errors.As(err, &kerr) {
		return kerr.Temporary()
	}
	return true
}
