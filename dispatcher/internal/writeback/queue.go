package writeback

import (
	"slices"
	"time"

	"github.com/orderpipe/pipeline/plumbing/retry"
)

// order is one Dangdang order waiting in a shop: the items (events) that want to write it back,
// coalesced to the latest state.
type order struct {
	id       string
	status   int
	occurred time.Time
	since    time.Time // when it started waiting: the batch window and ParkAfter count from here
	items    []Item
	// attempts are the calls that failed transiently; notBefore and backoff schedule the next.
	attempts  int
	notBefore time.Time
	backoff   *retry.Backoff
}

// latest is the item whose state is sent (the latest occurred_at; on a tie, the later arrival).
func (o *order) latest() Item {
	best := o.items[0]
	for _, it := range o.items[1:] {
		if !it.OccurredAt.Before(best.OccurredAt) {
			best = it
		}
	}
	return best
}

func (o *order) refresh() {
	l := o.latest()
	o.status, o.occurred = l.DistriStatus, l.OccurredAt
}

// queue holds a shop's waiting orders in arrival order, and which orders are in a call.
type queue struct {
	pend     map[string]*order
	fifo     []string
	inflight map[string]bool
}

func newQueue() queue { return queue{pend: map[string]*order{}, inflight: map[string]bool{}} }

func (q *queue) add(it Item, now time.Time) {
	o, ok := q.pend[it.OrderID]
	if !ok {
		o = &order{id: it.OrderID, since: now}
		q.pend[it.OrderID] = o
		q.fifo = append(q.fifo, it.OrderID)
	}
	o.items = append(o.items, it)
	o.refresh()
}

// requeue puts orders of a call back in front, merging with anything newer that arrived meanwhile.
func (q *queue) requeue(os []*order) {
	var front []string
	for _, o := range os {
		if cur, ok := q.pend[o.id]; ok {
			cur.items = append(o.items, cur.items...)
			cur.since, cur.attempts, cur.notBefore, cur.backoff = o.since, o.attempts, o.notBefore, o.backoff
			cur.refresh()
			continue
		}
		q.pend[o.id] = o
		front = append(front, o.id)
	}
	q.fifo = append(front, q.fifo...)
}

// eligible returns up to n waiting orders that are not in a call and not backing off, oldest
// first; the time the oldest of them started waiting; and the earliest time an order that is
// backing off becomes eligible (zero if none).
func (q *queue) eligible(now time.Time, n int) (ids []string, oldest, retryAt time.Time) {
	for _, id := range q.fifo {
		if len(ids) >= n && !oldest.IsZero() {
			break
		}
		if q.inflight[id] {
			continue
		}
		o := q.pend[id]
		if o.notBefore.After(now) {
			if retryAt.IsZero() || o.notBefore.Before(retryAt) {
				retryAt = o.notBefore
			}
			continue
		}
		if oldest.IsZero() {
			oldest = o.since
		}
		if len(ids) < n {
			ids = append(ids, id)
		}
	}
	return ids, oldest, retryAt
}

// take removes ids from the queue and marks them in a call.
func (q *queue) take(ids []string) []*order {
	out := make([]*order, len(ids))
	taken := map[string]bool{}
	for i, id := range ids {
		out[i] = q.pend[id]
		delete(q.pend, id)
		q.inflight[id] = true
		taken[id] = true
	}
	q.fifo = slices.DeleteFunc(q.fifo, func(id string) bool { return taken[id] })
	return out
}

// returned marks a call's orders as no longer in a call.
func (q *queue) returned(os []*order) {
	for _, o := range os {
		delete(q.inflight, o.id)
	}
}

// remove takes a waiting order out of the queue (to park or abandon it); nil if it is not
// waiting or is behind a call of its own (then it is left to that call's outcome).
func (q *queue) remove(id string) *order {
	o, ok := q.pend[id]
	if !ok || q.inflight[id] {
		return nil
	}
	delete(q.pend, id)
	q.fifo = slices.DeleteFunc(q.fifo, func(x string) bool { return x == id })
	return o
}

// waitedSince returns the waiting orders (not behind a call) that started waiting before t.
func (q *queue) waitedSince(t time.Time) []string {
	var out []string
	for _, id := range q.fifo {
		if !q.inflight[id] && q.pend[id].since.Before(t) {
			out = append(out, id)
		}
	}
	return out
}

// drainAll empties the queue.
func (q *queue) drainAll() []*order {
	out := make([]*order, 0, len(q.pend))
	for _, id := range q.fifo {
		out = append(out, q.pend[id])
	}
	q.pend, q.fifo = map[string]*order{}, nil
	return out
}
