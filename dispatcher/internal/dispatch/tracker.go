package dispatch

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/segmentio/kafka-go"
)

// tracker owns the offsets of the input topic and the fan-in of each event's parts; nothing else
// touches offsets. Per partition it keeps the fetched records in offset order until the commit
// mark passes them, and yields the offset below which every one is finished: the only offset
// that may be committed. A partition's commit mark never moves backwards, and never passes an
// unfinished record.
//
// It bounds memory: at most max records are tracked at once (Acquire waits for room), and when
// one partition holds maxSpan records, the unfinished events in its older half are asked to park
// (a Dangdang order waiting on a paused shop goes to the DLQ with a replayable reason), so one
// stuck order cannot pin its partition, or the whole consumer, for ever.
type tracker struct {
	mu         sync.Mutex
	parts      map[int]*partition
	floor      map[int]int64 // per partition, the highest offset this instance committed
	unsettled  int           // tracked events whose parts have not all completed
	idle       chan struct{} // closed while unsettled == 0
	sem        chan struct{} // one token per tracked record
	maxSpan    int
	onReleased func(n int) // records that left the tracker (metrics); may be nil
}

// partition is one assignment of a partition: a re-assignment (an offset at or below the last
// one fetched) starts a new one, and the old one's late completions are ignored.
type partition struct {
	n        int
	events   []*Event // fetched, not yet passed by the mark, ascending offsets
	last     int64    // highest offset fetched
	mark     int64    // next offset to commit (one past the last finished prefix); -1: none yet
	inCommit bool     // a commit of this partition is in flight
	asked    int64    // the next park requests wait until an offset past this one is fetched
}

// Event is one fetched record until every part (a topic copy, a Dangdang write-back, a DLQ
// write) has completed. Each part completes exactly once through Done.
type Event struct {
	Msg      kafka.Message
	t        *tracker
	p        *partition
	parts    int
	failed   bool
	settled  bool
	finished bool
	parkers  []func()
	dead     atomic.Bool // dead-lettered once already
}

func newTracker(max, maxSpan int) *tracker {
	t := &tracker{parts: map[int]*partition{}, floor: map[int]int64{}, idle: make(chan struct{}), sem: make(chan struct{}, max), maxSpan: maxSpan}
	close(t.idle)
	return t
}

// Acquire waits until a record may be tracked (fewer than max are), or ctx ends.
func (t *tracker) Acquire(ctx context.Context) error {
	select {
	case t.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release gives back a token taken by Acquire for a record that was not tracked.
func (t *tracker) Release() { <-t.sem }

// Track starts tracking a fetched record whose outcome needs parts completions (at least 1).
// The caller holds a token from Acquire, which the tracker now owns.
func (t *tracker) Track(m kafka.Message, parts int) *Event {
	t.mu.Lock()
	p := t.parts[m.Partition]
	if p == nil || m.Offset <= p.last {
		if p != nil {
			t.drop(p)
		}
		p = &partition{n: m.Partition, mark: -1, asked: -1}
		t.parts[m.Partition] = p
	}
	e := &Event{Msg: m, t: t, p: p, parts: parts}
	p.events = append(p.events, e)
	p.last = m.Offset
	if t.unsettled == 0 {
		t.idle = make(chan struct{})
	}
	t.unsettled++
	park := t.toPark(p)
	t.mu.Unlock()
	for _, f := range park {
		f()
	}
	return e
}

// drop forgets a partition's old assignment: its records are replayed by the new one.
func (t *tracker) drop(p *partition) {
	for _, e := range p.events {
		if !e.settled {
			e.settled = true
			t.settle()
		}
		<-t.sem
	}
	if t.onReleased != nil {
		t.onReleased(len(p.events))
	}
	p.events = nil
}

// toPark returns the park requests of the unfinished events in the older half of a partition
// that holds maxSpan records. While the partition stays over the bound they are asked again
// every maxSpan/4 records (an order that was in a probe call, or not yet queued, when asked
// could not be parked then); a request for an order that cannot be parked is a no-op.
func (t *tracker) toPark(p *partition) []func() {
	if t.maxSpan <= 0 || len(p.events) < t.maxSpan || p.last < p.asked {
		return nil
	}
	p.asked = p.last + int64(max(t.maxSpan/4, 1))
	var out []func()
	for _, e := range p.events[:len(p.events)-t.maxSpan/2] {
		if !e.settled {
			out = append(out, e.parkers...)
		}
	}
	return out
}

// ParkOverSpan asks again, for every partition over the bound, the unfinished events of its
// older half to park: an order whose shop was not stuck yet when the records arrived is parked
// once it is, even if no record arrives any more. The dispatcher calls it every commit tick.
func (t *tracker) ParkOverSpan() {
	t.mu.Lock()
	var out []func()
	for _, p := range t.parts {
		if t.maxSpan <= 0 || len(p.events) < t.maxSpan {
			continue
		}
		for _, e := range p.events[:len(p.events)-t.maxSpan/2] {
			if !e.settled {
				out = append(out, e.parkers...)
			}
		}
	}
	t.mu.Unlock()
	for _, f := range out {
		f()
	}
}

// OnPark registers how to park one of e's parts (called before that part is started).
func (e *Event) OnPark(f func()) {
	e.t.mu.Lock()
	e.parkers = append(e.parkers, f)
	e.t.mu.Unlock()
}

// Done completes one part. nil means the part's outcome is final and durable; an error means it
// was abandoned (a hard stop): the event then never counts as finished and is replayed.
func (e *Event) Done(err error) {
	t := e.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.settled || t.parts[e.Msg.Partition] != e.p {
		return // its partition was re-assigned: the new assignment replays it
	}
	if err != nil {
		e.failed = true
	}
	e.parts--
	if e.parts > 0 {
		return
	}
	e.settled = true
	e.finished = !e.failed
	t.settle()
	t.advance(e.p)
}

func (t *tracker) settle() {
	t.unsettled--
	if t.unsettled == 0 {
		close(t.idle)
	}
}

// advance moves the partition's mark over its finished prefix and releases those records.
func (t *tracker) advance(p *partition) {
	i := 0
	for i < len(p.events) && p.events[i].finished {
		p.mark = p.events[i].Msg.Offset + 1
		i++
	}
	if i == 0 {
		return
	}
	for range i {
		<-t.sem
	}
	clear(p.events[:i])
	p.events = p.events[i:]
	if t.onReleased != nil {
		t.onReleased(i)
	}
}

// commit is one partition's offset to commit: the next offset to read.
type commit struct {
	Partition int
	Offset    int64
	p         *partition
}

// Commits returns, per partition whose mark moved past the highest offset committed for it (in
// any assignment: a late commit of an old assignment may have moved it, and a new one must not
// take it back) and that has no commit in flight, the mark. Each must be answered with Committed.
func (t *tracker) Commits() []commit {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []commit
	for _, p := range t.parts {
		floor, ok := t.floor[p.n]
		if p.mark >= 0 && (!ok || p.mark > floor) && !p.inCommit {
			p.inCommit = true
			out = append(out, commit{Partition: p.n, Offset: p.mark, p: p})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out
}

// Committed records the result of committing c. A failed commit is tried again by the next
// Commits of the same assignment; a commit of an assignment that was replaced is forgotten.
func (t *tracker) Committed(c commit, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c.p.inCommit = false
	if floor, ok := t.floor[c.Partition]; err == nil && (!ok || c.Offset > floor) {
		t.floor[c.Partition] = c.Offset
	}
}

// Idle returns a channel closed while every tracked event is settled (finished or abandoned).
func (t *tracker) Idle() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.idle
}

// Unsettled is how many tracked events still wait for a part.
func (t *tracker) Unsettled() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unsettled
}
