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
	if parked != 1 {
		t.Fatalf("head asked to park %d times, want once", parked)
	}
	head.Done(nil) // parked: its DLQ write is durable
	if got := marks(tr); got[0] != 20 {
		t.Fatalf("commits %v, want 20", got)
	}
	if n := len(tr.sem); n != 0 {
		t.Fatalf("%d records still tracked", n)
	}
}

// Random fetch / finish / commit / reassign interleavings from several goroutines: the committed
// offset of a partition never goes backwards and never passes an unfinished record.
func TestTrackerStress(t *testing.T) {
	const parts = 3
	tr := newTracker(64, 16)
	var (
		mu        sync.Mutex // the "broker": committed offsets, and the events handed out
		kafkaOff  [parts]int64
		next      [parts]int64
		fetched   = map[[2]int64]bool{} // (partition, offset) of the current assignments -> finished
		open      []*Event
		wg        sync.WaitGroup
		stopFetch = make(chan struct{})
	)
	fetch := func(r *rand.Rand) {
		defer wg.Done()
		for i := 0; i < 4000; i++ {
			select {
			case <-stopFetch:
				return
			default:
			}
			p := r.IntN(parts)
			if err := tr.Acquire(t.Context()); err != nil {
				return
			}
			mu.Lock()
			if r.IntN(200) == 0 { // re-assigned: restart from the committed offset
				next[p] = kafkaOff[p]
				for k := range fetched {
					if k[0] == int64(p) {
						delete(fetched, k)
					}
				}
			}
			off := next[p]
			next[p] += 1 + int64(r.IntN(2)) // sparse offsets too
			e := tr.Track(kafka.Message{Partition: p, Offset: off}, 1+r.IntN(2))
			fetched[[2]int64{int64(p), off}] = false
			open = append(open, e)
			mu.Unlock()
		}
	}
	finish := func(r *rand.Rand) {
		defer wg.Done()
		for i := 0; i < 6000; i++ {
			mu.Lock()
			if len(open) == 0 {
				mu.Unlock()
				continue
			}
			j := r.IntN(len(open))
			e := open[j]
			e.t.mu.Lock()
			last := e.parts == 1
			current := tr.parts[e.Msg.Partition] == e.p
			e.t.mu.Unlock()
			if last {
				open[j] = open[len(open)-1]
				open = open[:len(open)-1]
				if current {
					fetched[[2]int64{int64(e.Msg.Partition), e.Msg.Offset}] = true
				}
			}
			e.Done(nil)
			mu.Unlock()
		}
	}
	commitOnce := func(r *rand.Rand) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range tr.Commits() {
			if r.IntN(4) == 0 {
				tr.Committed(c, errFake)
				continue
			}
			if c.Offset < kafkaOff[c.Partition] {
				t.Errorf("partition %d: commit %d goes back from %d", c.Partition, c.Offset, kafkaOff[c.Partition])
			}
			tr.mu.Lock()
			for _, e := range c.p.events {
				if e.Msg.Offset < c.Offset && !e.finished {
					t.Errorf("partition %d: commit %d passes unfinished offset %d", c.Partition, c.Offset, e.Msg.Offset)
				}
			}
			tr.mu.Unlock()
			for k, done := range fetched {
				if k[0] == int64(c.Partition) && k[1] < c.Offset && !done {
					t.Errorf("partition %d: commit %d passes offset %d, fetched and not finished", c.Partition, c.Offset, k[1])
				}
			}
			kafkaOff[c.Partition] = c.Offset
			tr.Committed(c, nil)
		}
	}
	wg.Add(4)
	go fetch(rand.New(rand.NewPCG(1, 2)))
	go finish(rand.New(rand.NewPCG(3, 4)))
	go finish(rand.New(rand.NewPCG(5, 6)))
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(7, 8))
		for range 3000 {
			commitOnce(r)
		}
		close(stopFetch)
	}()
	wg.Wait()
	// Finish everything left; the marks must reach every fetched offset of every assignment.
	mu.Lock()
	for _, e := range open {
		for e.parts > 0 && !e.settled {
			e.Done(nil)
		}
	}
	open = nil
	mu.Unlock()
	commitOnce(rand.New(rand.NewPCG(9, 9)))
	for _, p := range tr.parts {
		if len(p.events) != 0 {
			t.Errorf("partition %d: %d records still tracked after all finished", p.n, len(p.events))
		}
	}
}
