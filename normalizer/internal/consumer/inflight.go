package consumer

import "sync"

// inflight is the dedup bookkeeping of the batches this process is emitting. Redis answers
// "replay" for an event claimed but not yet confirmed, which is right after a crash but wrong
// while an earlier batch of this very process is still writing that event: emitting it again
// could give one event_id a second, different record (the stale flag may differ), and commits
// follow batch order anyway. So an event id taken by a batch stays in flight until that batch's
// confirm completed AND the next claim was sent after it: a claim already on its way when the
// confirm completed may have been answered "replay", and must still find the id in flight.
//
// Use: settle right before sending a claim; take for each event the claim let through, in
// order; confirm once a batch's confirm completed. It belongs to one run of the loop: a batch
// claimed but never emitted by an earlier, cancelled run must not make the next run drop its
// replay.
type inflight struct {
	mu        sync.Mutex
	count     map[string]int // per event id, the batches emitting it that are not settled yet
	confirmed []string       // ids confirmed since the last settle
}

func newInflight() *inflight { return &inflight{count: map[string]int{}} }

// settle forgets the ids whose confirm completed before now. Call it right before a claim is
// sent: from then on Redis answers "duplicate" for them.
func (f *inflight) settle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range f.confirmed {
		if f.count[id]--; f.count[id] <= 0 {
			delete(f.count, id)
		}
	}
	f.confirmed = f.confirmed[:0]
}

// take reports whether the current batch may emit id; if so, id is in flight until confirmed
// and settled. It is false while an earlier batch is emitting id.
func (f *inflight) take(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.count[id] > 0 {
		return false
	}
	f.count[id]++
	return true
}

// confirm records that the confirm of ids completed; the next settle forgets them.
func (f *inflight) confirm(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.confirmed = append(f.confirmed, ids...)
}

// size is how many ids are in flight (for tests).
func (f *inflight) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.count)
}
