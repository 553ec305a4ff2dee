package kafkaio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchapi "github.com/segmentio/kafka-go/protocol/fetch"

	"github.com/orderpipe/pipeline/plumbing/retry"
)

// FetchReader reads a topic with ONE fetch request in flight per leader broker, covering every
// partition that broker leads, as the Java client and sarama do. kafka-go's Reader runs a fetch
// loop per partition, each returning as soon as its partition holds one record: at a few
// thousand records a second, spread over 12 partitions, that is one fetch request per record
// per consumer, and on a co-located broker the cost of a request, not of a record, dominates
// (docs/performance-history.md: the broker's request log and profile under the system bench). It is
// built on kafka-go's protocol layer (Transport.RoundTrip with a fetch.Request of many
// partitions) and, with a group, on kafka-go's ConsumerGroup, so it stays inside the design
// card's client. It has the two methods the services use of *kafka.Reader, FetchMessage and
// CommitMessages, with the same meaning.
//
// Batching is natural and bounded: a fetch waits at the broker (MinBytes 1, up to MaxWait) until
// any of its partitions has a record, so an idle reader costs one request per MaxWait; after a
// fetch that returned little, the next one starts FetchLinger later, so that under load each
// request carries what arrived meanwhile instead of one record (at most FetchLinger of added
// latency).
//
// With a group (ReaderConfig.GroupID), each generation of the group is one session:
//   - its records are handed out in partition order; records fetched in a generation that has
//     ended are dropped, never handed out (the next owner replays from the committed offset);
//   - when the generation ends (a member joins or leaves, partitions change), fetching stops and
//     the reader waits, up to DrainTimeout, until the application has committed every record it
//     was handed, committing through the ending generation, before it rejoins. The next owner
//     of a partition then starts after them instead of replaying them while this member still
//     works on them (the window kafka-go's Reader leaves open: it has no revocation hook);
//   - CommitMessages commits only partitions of the current generation's assignment and never
//     moves a partition's committed offset backwards, so a commit that arrives late for a
//     partition now owned by another member cannot rewind that member (kafka-go #1308). A
//     commit made while no generation is current waits for the next one.
//
// Without a group, it reads the given partitions from StartOffset (tools and tests).
type FetchReader struct {
	cfg       ReaderConfig
	topic     string
	addr      net.Addr
	transport *kafka.Transport
	client    *kafka.Client
	cg        *kafka.ConsumerGroup

	batches chan *fetchBatch
	errs    chan error
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}

	mu       sync.Mutex
	cur      *fetchBatch
	next     int
	sess     *session      // the current (or draining) session; nil between generations
	changed  chan struct{} // closed and replaced when sess changes or a commit lands
	failures int           // consecutive failed fetch rounds

	broken error // set at construction when the group cannot be made: every call returns it
}

type fetchBatch struct {
	sess *session
	msgs []kafka.Message
}

// session is one generation of the group (or the whole life of a reader without one).
type session struct {
	gen   *kafka.Generation // nil without a group
	parts map[int]*partState
	ended bool // guarded by FetchReader.mu: its records are no longer handed out
}

type partState struct {
	id int
	// next is the offset to fetch; owned by the one fetch loop that has the partition.
	next int64
	// delivered is the highest offset handed out, committed the highest committed next offset
	// (guarded by FetchReader.mu).
	delivered, committed int64
}

// DefaultFetchLinger is ReaderConfig.FetchLinger's default.
const DefaultFetchLinger = 2 * time.Millisecond

// lingerBelow: a fetch that returned at least this much starts the next one at once (a backlog
// is read at full speed).
const lingerBelow = 64 << 10

var errReaderClosed = errors.New("kafka reader closed")

// NewFetchReader is Plaintext(c.Brokers...).NewFetchReader(c, partitions...), for tests.
func NewFetchReader(c ReaderConfig, partitions ...int) *FetchReader {
	return Plaintext(c.Brokers...).NewFetchReader(c, partitions...)
}

// NewFetchReader returns a reader of c.Topic: a member of the consumer group c.GroupID, or,
// with no GroupID, a reader of the given partitions (all of c.Partition when none are given)
// from c.StartOffset. It never commits by itself: callers use CommitMessages after their output
// is durable, so a crash replays, never skips.
func (conn Conn) NewFetchReader(c ReaderConfig, partitions ...int) *FetchReader {
	c = readerDefaults(c)
	if c.FetchLinger == 0 {
		c.FetchLinger = DefaultFetchLinger
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 3 * time.Second
	}
	tr := conn.NewTransportFor(c.Topic)
	addr := kafka.TCP(conn.Brokers...)
	ctx, cancel := context.WithCancel(context.Background())
	r := &FetchReader{
		cfg:       c,
		topic:     c.Topic,
		addr:      addr,
		transport: tr,
		client:    &kafka.Client{Addr: addr, Transport: tr, Timeout: 10 * time.Second},
		batches:   make(chan *fetchBatch, 4),
		errs:      make(chan error, 1),
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
		changed:   make(chan struct{}),
	}
	if c.GroupID == "" {
		if len(partitions) == 0 {
			partitions = []int{c.Partition}
		}
		go r.runStatic(partitions)
		return r
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                     c.GroupID,
		Brokers:                conn.Brokers,
		Dialer:                 conn.NewDialer(),
		Topics:                 []string{c.Topic},
		HeartbeatInterval:      groupHeartbeat,
		SessionTimeout:         groupSession,
		RebalanceTimeout:       groupRebalance,
		JoinGroupBackoff:       groupJoinBackoff,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: groupPartitionWatch,
		StartOffset:            c.StartOffset,
		Timeout:                10 * time.Second,
	})
	if err != nil { // a Conn without brokers
		r.broken = fmt.Errorf("kafka reader of %q: %w", c.Topic, err)
		close(r.done)
		return r
	}
	r.cg = cg
	go r.runGroup()
	return r
}

// readerDefaults fills ReaderConfig's defaults (shared with NewReader).
func readerDefaults(c ReaderConfig) ReaderConfig {
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
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3
	}
	return c
}

// FetchMessage returns the next record, waiting for one until ctx ends. A fetch that keeps
// failing (MaxAttempts rounds in a row) is returned as an error once; the reader goes on trying.
func (r *FetchReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	if r.broken != nil {
		return kafka.Message{}, r.broken
	}
	for {
		r.mu.Lock()
		if b := r.cur; b != nil {
			if r.next < len(b.msgs) && !b.sess.ended {
				m := b.msgs[r.next]
				r.next++
				if ps := b.sess.parts[m.Partition]; ps != nil && m.Offset > ps.delivered {
					ps.delivered = m.Offset
				}
				r.mu.Unlock()
				return m, nil
			}
			r.cur = nil
		}
		r.mu.Unlock()
		select {
		case b := <-r.batches:
			r.mu.Lock()
			r.cur, r.next = b, 0
			r.mu.Unlock()
		case err := <-r.errs:
			return kafka.Message{}, err
		case <-ctx.Done():
			return kafka.Message{}, ctx.Err()
		case <-r.ctx.Done():
			return kafka.Message{}, io.EOF
		}
	}
}

// CommitMessages commits, for each partition of msgs, the offset after its last message: only
// partitions the current generation assigns to this member, and only forward. While no
// generation is current (the group is rebalancing) it waits for the next one, until ctx ends.
func (r *FetchReader) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	if r.broken != nil {
		return r.broken
	}
	if r.cg == nil {
		return errors.New("kafka commit: the reader has no consumer group")
	}
	want := map[int]int64{}
	for _, m := range msgs {
		if m.Topic != r.topic {
			return fmt.Errorf("kafka commit: message of topic %q on a reader of %q", m.Topic, r.topic)
		}
		if o, ok := want[m.Partition]; !ok || m.Offset+1 > o {
			want[m.Partition] = m.Offset + 1
		}
	}
	if len(want) == 0 {
		return nil
	}
	for {
		r.mu.Lock()
		s, changed := r.sess, r.changed
		offs := map[int]int64{}
		if s != nil {
			for p, o := range want {
				if ps := s.parts[p]; ps != nil && o > ps.committed {
					offs[p] = o
				}
			}
		}
		r.mu.Unlock()
		if s == nil {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return fmt.Errorf("kafka commit: waiting for the group to settle: %w", ctx.Err())
			case <-r.ctx.Done():
				return errReaderClosed
			}
		}
		if len(offs) == 0 {
			return nil
		}
		err := s.gen.CommitOffsets(map[string]map[int]int64{r.topic: offs})
		r.mu.Lock()
		if err == nil {
			for p, o := range offs {
				if ps := s.parts[p]; o > ps.committed {
					ps.committed = o
				}
			}
			r.notify()
		}
		moved := r.sess != s
		r.mu.Unlock()
		if err != nil && moved {
			continue // the generation ended meanwhile: decide again against the next one
		}
		if err != nil {
			return fmt.Errorf("kafka commit: %w", err)
		}
		return nil
	}
}

// Close stops fetching and leaves the group (without waiting for commits: callers commit what
// they finished before closing).
func (r *FetchReader) Close() error {
	r.cancel()
	var err error
	if r.cg != nil {
		err = r.cg.Close()
	}
	<-r.done
	r.transport.CloseIdleConnections()
	return err
}

// notify wakes whoever waits on r.changed; r.mu is held.
func (r *FetchReader) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *FetchReader) setSession(s *session) {
	r.mu.Lock()
	r.sess = s
	r.notify()
	r.mu.Unlock()
}

// report counts a failed round; after MaxAttempts in a row the error is handed to FetchMessage.
func (r *FetchReader) report(err error) {
	r.mu.Lock()
	r.failures++
	n := r.failures
	r.mu.Unlock()
	if n < r.cfg.MaxAttempts {
		return
	}
	select {
	case r.errs <- fmt.Errorf("kafka fetch %s: %w", r.topic, err):
	default:
	}
}

func (r *FetchReader) ok() {
	r.mu.Lock()
	r.failures = 0
	r.mu.Unlock()
	select { // a failure that was reported before recovering is no longer news
	case <-r.errs:
	default:
	}
}

func (r *FetchReader) runStatic(partitions []int) {
	defer close(r.done)
	s := &session{parts: map[int]*partState{}}
	for _, p := range partitions {
		s.parts[p] = &partState{id: p, next: r.cfg.StartOffset, delivered: -1, committed: -1}
	}
	r.setSession(s)
	r.serve(r.ctx, s)
}

func (r *FetchReader) runGroup() {
	defer close(r.done)
	b := retry.Policy{Min: 100 * time.Millisecond, Max: 2 * time.Second}.New()
	for {
		gen, err := r.cg.Next(r.ctx)
		if err != nil {
			if r.ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return
			}
			r.report(err)
			if retry.Sleep(r.ctx, b.Next()) != nil {
				return
			}
			continue
		}
		b.Reset()
		s := &session{gen: gen, parts: map[int]*partState{}}
		for _, a := range gen.Assignments[r.topic] {
			committed := a.Offset
			if committed < 0 {
				committed = -1
			}
			s.parts[a.ID] = &partState{id: a.ID, next: a.Offset, delivered: -1, committed: committed}
		}
		r.setSession(s)
		gen.Start(func(ctx context.Context) {
			r.serve(ctx, s)
			r.mu.Lock()
			s.ended = true
			r.mu.Unlock()
			if r.ctx.Err() == nil {
				r.drain(s)
			}
			r.setSession(nil)
		})
	}
}

// drain waits, up to DrainTimeout, until every record of s handed out has been committed.
func (r *FetchReader) drain(s *session) {
	t := time.NewTimer(r.cfg.DrainTimeout)
	defer t.Stop()
	for {
		r.mu.Lock()
		pending := false
		for _, ps := range s.parts {
			if ps.delivered >= 0 && ps.committed <= ps.delivered {
				pending = true
				break
			}
		}
		changed := r.changed
		r.mu.Unlock()
		if !pending {
			return
		}
		select {
		case <-changed:
		case <-t.C:
			return
		case <-r.ctx.Done():
			return
		}
	}
}

// serve fetches s's partitions until ctx ends: it finds each partition's leader and runs one
// fetch loop per leader; when one fails (a leader moved, a connection broke) all stop, and the
// partitions are grouped again from fresh metadata.
func (r *FetchReader) serve(ctx context.Context, s *session) {
	if len(s.parts) == 0 {
		<-ctx.Done()
		return
	}
	b := retry.Policy{Min: 50 * time.Millisecond, Max: time.Second}.New()
	for ctx.Err() == nil {
		groups, err := r.plan(ctx, s)
		if err == nil {
			lctx, cancel := context.WithCancel(ctx)
			errc := make(chan error, len(groups))
			for _, ps := range groups {
				go func() { errc <- r.loop(lctx, s, ps) }()
			}
			err = <-errc
			cancel()
			for range len(groups) - 1 {
				<-errc
			}
		}
		if ctx.Err() != nil {
			return
		}
		r.report(err)
		if retry.Sleep(ctx, b.Next()) != nil {
			return
		}
	}
}

// plan resolves the partitions still at FirstOffset/LastOffset and groups them by leader.
func (r *FetchReader) plan(ctx context.Context, s *session) ([][]*partState, error) {
	var unresolved []kafka.OffsetRequest
	for _, ps := range s.parts {
		if ps.next < 0 {
			unresolved = append(unresolved, kafka.OffsetRequest{Partition: ps.id, Timestamp: ps.next})
		}
	}
	if len(unresolved) > 0 {
		res, err := r.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{r.topic: unresolved}})
		if err != nil {
			return nil, fmt.Errorf("list offsets: %w", err)
		}
		for _, po := range res.Topics[r.topic] {
			ps := s.parts[po.Partition]
			if ps == nil || ps.next >= 0 {
				continue
			}
			if po.Error != nil {
				return nil, fmt.Errorf("list offsets of partition %d: %w", po.Partition, po.Error)
			}
			if ps.next == kafka.LastOffset {
				ps.next = po.LastOffset
			} else {
				ps.next = po.FirstOffset
			}
		}
	}
	md, err := r.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{r.topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	leaders := map[int]int{}
	for _, t := range md.Topics {
		if t.Name != r.topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("metadata of %s: %w", r.topic, t.Error)
		}
		for _, p := range t.Partitions {
			if p.Error == nil && p.Leader.Host != "" {
				leaders[p.ID] = p.Leader.ID
			}
		}
	}
	byLeader := map[int][]*partState{}
	for _, ps := range s.parts {
		if ps.next < 0 {
			return nil, fmt.Errorf("partition %d: no offset to start from", ps.id)
		}
		l, ok := leaders[ps.id]
		if !ok {
			return nil, fmt.Errorf("partition %d of %s has no leader", ps.id, r.topic)
		}
		byLeader[l] = append(byLeader[l], ps)
	}
	out := make([][]*partState, 0, len(byLeader))
	for _, ps := range byLeader {
		slices.SortFunc(ps, func(a, b *partState) int { return a.id - b.id })
		out = append(out, ps)
	}
	return out, nil
}

// loop fetches the partitions of one leader until ctx ends (nil) or a round fails.
func (r *FetchReader) loop(ctx context.Context, s *session, parts []*partState) error {
	byID := make(map[int32]*partState, len(parts))
	for _, ps := range parts {
		byID[int32(ps.id)] = ps
	}
	partMax := int32(max(1<<20, r.cfg.MaxBytes/len(parts)))
	first := 0
	for {
		req := &fetchapi.Request{
			ReplicaID: -1, MaxWaitTime: int32(r.cfg.MaxWait.Milliseconds()), MinBytes: 1, MaxBytes: int32(r.cfg.MaxBytes),
			SessionID: -1, SessionEpoch: -1,
			Topics: []fetchapi.RequestTopic{{Topic: r.topic, Partitions: make([]fetchapi.RequestPartition, 0, len(parts))}},
		}
		// The broker fills a response in request order: start at another partition each round,
		// so a busy partition cannot starve the others.
		for i := range parts {
			ps := parts[(first+i)%len(parts)]
			req.Topics[0].Partitions = append(req.Topics[0].Partitions, fetchapi.RequestPartition{
				Partition: int32(ps.id), CurrentLeaderEpoch: -1, FetchOffset: ps.next, LogStartOffset: -1, PartitionMaxBytes: partMax,
			})
		}
		first++
		rctx, cancel := context.WithTimeout(ctx, r.cfg.MaxWait+10*time.Second)
		res, err := r.transport.RoundTrip(rctx, r.addr, req)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		fr, ok := res.(*fetchapi.Response)
		if !ok {
			return fmt.Errorf("unexpected fetch response %T", res)
		}
		if fr.ErrorCode != 0 {
			return kafka.Error(fr.ErrorCode)
		}
		var msgs []kafka.Message
		var size int
		var perr error
		for _, t := range fr.Topics {
			for _, p := range t.Partitions {
				ps := byID[p.Partition]
				if ps == nil || t.Topic != r.topic {
					continue
				}
				if p.ErrorCode != 0 {
					if err := r.partitionError(ctx, ps, kafka.Error(p.ErrorCode)); err != nil && perr == nil {
						perr = err
					}
					continue
				}
				if p.RecordSet.Records == nil {
					continue
				}
				var n int
				msgs, n, err = appendRecords(msgs, r.topic, ps, p.HighWatermark, p.RecordSet.Records)
				size += n
				if err != nil && perr == nil {
					perr = fmt.Errorf("partition %d: %w", ps.id, err)
				}
			}
		}
		if len(msgs) > 0 {
			select {
			case r.batches <- &fetchBatch{sess: s, msgs: msgs}:
			case <-ctx.Done():
				return nil
			}
		}
		if perr != nil {
			return perr
		}
		r.ok()
		if len(msgs) > 0 && size < lingerBelow && r.cfg.FetchLinger > 0 {
			if retry.Sleep(ctx, r.cfg.FetchLinger) != nil {
				return nil
			}
		}
	}
}

// partitionError handles a partition's error code: an offset out of range moves to the log's
// first offset when it is before it (retention passed it) and otherwise waits; anything else
// fails the round (after which leaders are looked up again).
func (r *FetchReader) partitionError(ctx context.Context, ps *partState, err error) error {
	if !errors.Is(err, kafka.OffsetOutOfRange) {
		return fmt.Errorf("partition %d: %w", ps.id, err)
	}
	res, lerr := r.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		r.topic: {kafka.FirstOffsetOf(ps.id), kafka.LastOffsetOf(ps.id)}}})
	if lerr != nil {
		return fmt.Errorf("partition %d: %w (and listing its offsets: %v)", ps.id, err, lerr)
	}
	for _, po := range res.Topics[r.topic] {
		if po.Partition == ps.id && po.Error == nil && ps.next < po.FirstOffset {
			ps.next = po.FirstOffset
			return nil
		}
	}
	return fmt.Errorf("partition %d at offset %d: %w", ps.id, ps.next, err)
}

// appendRecords appends the records of rr at or after ps.next as messages (copied out of the
// response's buffers) and moves ps.next past them; it returns the bytes of keys and values.
func appendRecords(msgs []kafka.Message, topic string, ps *partState, hwm int64, rr protocol.RecordReader) ([]kafka.Message, int, error) {
	size := 0
	for {
		rec, err := rr.ReadRecord()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return msgs, size, nil
			}
			return msgs, size, err
		}
		key, kerr := readBytes(rec.Key)
		val, verr := readBytes(rec.Value)
		if rec.Offset < ps.next {
			continue // a batch may start before the offset asked for
		}
		if err := errors.Join(kerr, verr); err != nil {
			return msgs, size, err
		}
		var hs []kafka.Header
		if len(rec.Headers) > 0 {
			hs = make([]kafka.Header, len(rec.Headers))
			for i, h := range rec.Headers {
				hs[i] = kafka.Header{Key: h.Key, Value: bytes.Clone(h.Value)}
			}
		}
		msgs = append(msgs, kafka.Message{Topic: topic, Partition: ps.id, Offset: rec.Offset, HighWaterMark: hwm,
			Key: key, Value: val, Headers: hs, Time: rec.Time})
		size += len(key) + len(val)
		ps.next = rec.Offset + 1
	}
}

// readBytes copies b and releases it to kafka-go's buffer pool; nil stays nil.
func readBytes(b protocol.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	defer b.Close()
	return protocol.ReadAll(b)
}
