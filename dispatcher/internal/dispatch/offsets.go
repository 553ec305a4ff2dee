package dispatch

import (
	"sort"
	"sync"
)

// offsets tracks, per partition, which fetched records are finished, and yields the highest offset
// below which every fetched record is finished: the only offset that may be committed.
type offsets struct {
	mu    sync.Mutex
	parts map[int]*partOffsets
}

type partOffsets struct {
	queue     []int64        // fetched, unfinished-or-not-yet-popped offsets, ascending
	state     map[int64]bool // offset -> finished
	committed int64          // highest contiguous finished offset, -1 if none
	last      int64          // highest offset added
	dirty     bool           // committed moved since the last Committable
}

func newOffsets() *offsets { return &offsets{parts: map[int]*partOffsets{}} }

// Add records a fetched offset. An offset at or below the last one seen means the partition was
// re-assigned and fetching restarted from the committed offset: what was tracked is dropped (its
// late Done calls are ignored) and tracking restarts.
func (o *offsets) Add(partition int, offset int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.parts[partition]
	if p == nil || offset <= p.last {
		p = &partOffsets{state: map[int64]bool{}, committed: -1}
		o.parts[partition] = p
	}
	p.queue = append(p.queue, offset)
	p.state[offset] = false
	p.last = offset
}

// Done marks a fetched offset finished.
func (o *offsets) Done(partition int, offset int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.parts[partition]
	if p == nil {
		return
	}
	if _, ok := p.state[offset]; !ok {
		return
	}
	p.state[offset] = true
	for len(p.queue) > 0 && p.state[p.queue[0]] {
		p.committed = p.queue[0]
		delete(p.state, p.queue[0])
		p.queue = p.queue[1:]
		p.dirty = true
	}
}

// Committable returns, per partition whose finished mark moved since the last call, the highest
// offset below which everything is finished.
func (o *offsets) Committable() map[int]int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[int]int64{}
	for n, p := range o.parts {
		if p.dirty {
			out[n] = p.committed
			p.dirty = false
		}
	}
	return out
}

// Requeue marks partitions dirty again after a failed commit.
func (o *offsets) Requeue(parts map[int]int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for n := range parts {
		if p := o.parts[n]; p != nil {
			p.dirty = true
		}
	}
}

// Pending returns how many fetched records are not finished yet.
func (o *offsets) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, p := range o.parts {
		n += len(p.queue)
	}
	return n
}

func sortedParts(m map[int]int64) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
