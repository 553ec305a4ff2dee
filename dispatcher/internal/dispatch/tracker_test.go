package dispatch

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/segmentio/kafka-go"
)

func track(tr *tracker, partition int, offset int64) *Event {
	tr.sem <- struct{}{}
	return tr.Track(kafka.Message{Partition: partition, Offset: offset}, 1)
}

func marks(tr *tracker) map[int]int64 {
	out := map[int]int64{}
	for _, c := range tr.Commits() {
		out[c.Partition] = c.Offset
		tr.Committed(c, nil)
	}
	return out
}

func TestTrackerMarks(t *testing.T) {
	tests := []struct {
		name string
		add  []int64
		done []int64
		want map[int]int64 // next offset to read
	}{
		{"nothing done", []int64{5, 6, 7}, nil, map[int]int64{}},
		{"contiguous", []int64{5, 6, 7}, []int64{5, 6}, map[int]int64{0: 7}},
		{"gap holds", []int64{5, 6, 7}, []int64{6, 7}, map[int]int64{}},
		{"gap filled", []int64{5, 6, 7}, []int64{7, 6, 5}, map[int]int64{0: 8}},
		{"sparse offsets", []int64{5, 9, 12}, []int64{5, 9}, map[int]int64{0: 10}},
		{"replay restarts", []int64{5, 6, 7, 5}, []int64{5}, map[int]int64{0: 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(100, 0)
			evs := map[int64]*Event{}
			for _, a := range tt.add {
				evs[a] = track(tr, 0, a) // a re-added offset replaces the old event
			}
			for _, d := range tt.done {
				evs[d].Done(nil)
			}
			if got := marks(tr); len(got) != len(tt.want) || got[0] != tt.want[0] {
				t.Fatalf("commits = %v, want %v", got, tt.want)
			}
			if got := marks(tr); len(got) != 0 {
				t.Fatalf("second call = %v, want nothing new", got)
			}
		})
	}
}

// Defect 2: a commit that failed across a rebalance must not make the fresh partition commit an
// offset before its records (kafka-go sends -1 as 0, replaying the whole partition).
func TestRequeueAfterReassignDoesNotRewind(t *testing.T) {
	tr := newTracker(100, 0)
	track(tr, 0, 10).Done(nil)
	c := tr.Commits()
	track(tr, 0, 5) // the partition was re-assigned: fetching restarts at 5
	for _, x := range c {
		tr.Committed(x, errFake)
	}
	for _, x := range tr.Commits() {
		t.Fatalf("partition %d committable offset %d after a failed commit across a rebalance, before anything finished", x.Partition, x.Offset)
	}
}

type fakeErr struct{}

func (fakeErr) Error() string { return "fake" }

var errFake = fakeErr{}

// An abandoned part (hard stop) settles the event for the drain, but never lets it commit.
func TestAbandonedEventSettlesButNeverCommits(t *testing.T) {
	tr := newTracker(10, 0)
	e := track(tr, 0, 1)
	e.Done(errFake)
	select {
	case <-tr.Idle():
	default:
		t.Fatal("not idle after the only event settled")
	}
	track(tr, 0, 2).Done(nil)
	if got := marks(tr); len(got) != 0 {
		t.Fatalf("commits %v past an abandoned event", got)
	}
}

// Past maxSpan records in a partition, the unfinished events of its older half are asked to park.
func TestSpanBoundAsksHeadToPark(t *testing.T) {
	tr := newTracker(100, 10)
	parked := 0
	head := track(tr, 0, 0)
	head.OnPark(func() { parked++ })
	for i := int64(1); i < 20; i++ {
		track(tr, 0, i).Done(nil)
	}
	if parked < 1 || parked > 6 { // 10 records past the bound, asked again every 10/4 records
		t.Fatalf("head asked to park %d times, want once, then again every few records while over the bound", parked)
	}
	before := parked
	tr.ParkOverSpan() // no record arrives any more: the periodic ask reaches the head again
	if parked != before+1 {
		t.Fatalf("periodic ask: head asked %d more times, want 1", parked-before)
	}
	head.Done(nil) // parked: its DLQ write is durable
	if got := marks(tr); got[0] != 20 {
		t.Fatalf("commits %v, want 20", got)
	}
	if n := len(tr.sem); n != 0 {
		t.Fatalf("%d records still tracked", n)
	}
}

// Random fetch / finish / commit / reassign interleavings: a seeded driver picks each step, and
// the finishes run on concurrent workers (for -race). The committed offset of a partition never
// goes backwards and never passes a fetched record that is not finished.
func TestTrackerStress(t *testing.T) {
	for seed := range uint64(20) {
		stress(t, seed)
	}
}

func stress(t *testing.T, seed uint64) {
	const parts = 3
	r := rand.New(rand.NewPCG(seed, 42))
	tr := newTracker(64, 16)
	type key struct {
		p   int
		off int64
	}
	var (
		kafkaOff [parts]int64
		next     [parts]int64
		gen      [parts]int
		fetched  = map[key]bool{} // this assignment's records -> finished
		open     []*Event
		genOf    = map[*Event]int{}
		work     = make(chan *Event)
		wg       sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for e := range work {
				e.Done(nil)
			}
		})
	}
	commit := func() {
		for _, c := range tr.Commits() {
			if r.IntN(4) == 0 {
				tr.Committed(c, errFake)
				continue
			}
			if c.Offset < kafkaOff[c.Partition] {
				t.Fatalf("seed %d: partition %d: commit %d goes back from %d", seed, c.Partition, c.Offset, kafkaOff[c.Partition])
			}
			for k, done := range fetched {
				if k.p == c.Partition && k.off < c.Offset && !done {
					t.Fatalf("seed %d: partition %d: commit %d passes offset %d, fetched and not finished", seed, c.Partition, c.Offset, k.off)
				}
			}
			kafkaOff[c.Partition] = c.Offset
			tr.Committed(c, nil)
		}
	}
	for step := 0; step < 20000; step++ {
		switch n := r.IntN(100); {
		case n < 45 && len(tr.sem) < cap(tr.sem): // fetch
			p := r.IntN(parts)
			tr.sem <- struct{}{}
			off := next[p]
			next[p] += 1 + int64(r.IntN(2)) // sparse offsets too
			e := tr.Track(kafka.Message{Partition: p, Offset: off}, 1+r.IntN(2))
			fetched[key{p, off}] = false
			genOf[e] = gen[p]
			open = append(open, e)
		case n < 90 && len(open) > 0: // finish one part of a random event
			j := r.IntN(len(open))
			e := open[j]
			tr.mu.Lock()
			last := e.parts == 1 || e.settled
			tr.mu.Unlock()
			if last {
				open[j] = open[len(open)-1]
				open = open[:len(open)-1]
				if genOf[e] == gen[e.Msg.Partition] {
					fetched[key{e.Msg.Partition, e.Msg.Offset}] = true
				}
				work <- e
				continue
			}
			e.Done(nil)
		case n < 98:
			commit()
		default: // re-assigned: fetching restarts at the committed offset
			p := r.IntN(parts)
			next[p] = kafkaOff[p]
			gen[p]++
			for k := range fetched {
				if k.p == p {
					delete(fetched, k)
				}
			}
		}
	}
	close(work)
	wg.Wait()
}
