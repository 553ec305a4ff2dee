package consumer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// Every stage sees the batches in source order, each batch passes the stages in order, and
// closing the source drains what was handed in.
func TestRunStagesOrderAndDrain(t *testing.T) {
	var mu sync.Mutex
	var log []string
	rec := func(name string) stage {
		return func(_ context.Context, b *batch) error {
			time.Sleep(time.Millisecond) // let the stages overlap
			mu.Lock()
			log = append(log, name+string(rune('0'+len(b.msgs))))
			mu.Unlock()
			return nil
		}
	}
	src := make(chan *batch, 5)
	for i := 1; i <= 5; i++ {
		src <- &batch{msgs: make([]kafka.Message, i)}
	}
	close(src)
	work, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := runStages(work, cancel, src, one(rec("a")), one(rec("b")), one(rec("c"))); err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, e := range log {
		pos[e] = i
	}
	if len(log) != 15 {
		t.Fatalf("%d stage calls, want 15: %v", len(log), log)
	}
	for i := 1; i <= 5; i++ {
		n := string(rune('0' + i))
		if pos["a"+n] > pos["b"+n] || pos["b"+n] > pos["c"+n] {
			t.Errorf("batch %s did not pass a, b, c in order: %v", n, log)
		}
		if i > 1 {
			p := string(rune('0' + i - 1))
			for _, s := range []string{"a", "b", "c"} {
				if pos[s+p] > pos[s+n] {
					t.Errorf("stage %s saw batch %s before %s: %v", s, n, p, log)
				}
			}
		}
	}
}

// A stage error cancels the work, is returned, and the batches behind it never reach the later
// stages (they are not committed: replayed after a restart); nothing blocks.
func TestRunStagesErrorStops(t *testing.T) {
	boom := errors.New("boom")
	var after []int
	src := make(chan *batch, 4)
	for i := 1; i <= 4; i++ {
		src <- &batch{msgs: make([]kafka.Message, i)}
	}
	close(src)
	work, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := runStages(work, cancel, src,
		one(func(_ context.Context, b *batch) error {
			if len(b.msgs) == 2 {
				return boom
			}
			return nil
		}),
		one(func(_ context.Context, b *batch) error { after = append(after, len(b.msgs)); return nil }))
	if !errors.Is(err, boom) || work.Err() == nil {
		t.Fatalf("err %v, work %v: want boom and the work cancelled", err, work.Err())
	}
	if len(after) != 1 || after[0] != 1 {
		t.Fatalf("batches past the failure: %v, want only the one before it", after)
	}
}

// A grouped step is handed every batch waiting for it at once, in order, each exactly once; while
// it is busy the steps before it go on (it does not pace them as a one-at-a-time step would).
func TestRunStagesGroupedStepTakesWhatWaits(t *testing.T) {
	src := make(chan *batch, 20)
	for i := 1; i <= 20; i++ {
		src <- &batch{msgs: make([]kafka.Message, i)}
	}
	close(src)
	firstDone := make(chan struct{})
	var mu sync.Mutex
	var before int // batches past the first step while the grouped step held its first call
	var calls [][]int
	work, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := runStages(work, cancel, src,
		one(func(context.Context, *batch) error {
			mu.Lock()
			before++
			mu.Unlock()
			return nil
		}),
		grouped(func(_ context.Context, bs []*batch) error {
			var sizes []int
			for _, b := range bs {
				sizes = append(sizes, len(b.msgs))
			}
			mu.Lock()
			calls = append(calls, sizes)
			first := len(calls) == 1
			mu.Unlock()
			if first {
				// Hold the first call until the first step has handled everything it can.
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) {
					mu.Lock()
					n := before
					mu.Unlock()
					if n >= 18 { // 20 minus what the channels between the steps hold
						break
					}
					time.Sleep(time.Millisecond)
				}
				close(firstDone)
			}
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	var all []int
	for _, c := range calls {
		all = append(all, c...)
	}
	for i, n := range all {
		if n != i+1 {
			t.Fatalf("grouped step saw %v (calls %v), want 1..20 in order, once each", all, calls)
		}
	}
	if len(all) != 20 {
		t.Fatalf("grouped step saw %d batches, want 20 (calls %v)", len(all), calls)
	}
	if len(calls) > 3 {
		t.Errorf("%d calls for 20 batches that waited: %v; want the waiting batches taken together", len(calls), calls)
	}
	if before < 18 {
		t.Errorf("the first step handled %d batches while the grouped step was busy, want at least 18", before)
	}
}

// A grouped step with an interval starts at most once per interval: batches that finish sooner
// wait for the next call and are all in it, in order, once each; the first call does not wait;
// the steps before it are not held to its pace; and the drain still hands over everything.
func TestRunStagesGroupedStepEvery(t *testing.T) {
	const every = 40 * time.Millisecond
	src := make(chan *batch)
	var sent time.Duration // how long the 60 batches took to send: 300 ms, more on a busy machine
	go func() {
		defer close(src)
		start := time.Now()
		for i := 1; i <= 60; i++ { // one batch every 5 ms: 300 ms of batches
			src <- &batch{msgs: make([]kafka.Message, i)}
			time.Sleep(5 * time.Millisecond)
		}
		sent = time.Since(start)
	}()
	var starts []time.Time
	var calls [][]int
	var firstSeen time.Time // when the first step finished the first batch
	work, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := runStages(work, cancel, src,
		one(func(_ context.Context, b *batch) error {
			if len(b.msgs) == 1 {
				firstSeen = time.Now()
			}
			return nil
		}),
		groupedEvery(func(_ context.Context, bs []*batch) error {
			starts = append(starts, time.Now())
			var sizes []int
			for _, b := range bs {
				sizes = append(sizes, len(b.msgs))
			}
			calls = append(calls, sizes)
			return nil
		}, every))
	if err != nil {
		t.Fatal(err)
	}
	var all []int
	for _, c := range calls {
		all = append(all, c...)
	}
	if len(all) != 60 {
		t.Fatalf("grouped step saw %d batches, want 60 (calls %v)", len(all), calls)
	}
	for i, n := range all {
		if n != i+1 {
			t.Fatalf("grouped step saw %v, want 1..60 in order, once each", all)
		}
	}
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < every {
			t.Errorf("calls %d and %d started %v apart, want at least %v", i-1, i, gap, every)
		}
	}
	// 300 ms of batches at one call per 40 ms: about 8 calls, not 60. The bound follows how long
	// the sending took (under -race on a loaded machine the 5 ms sleeps stretch: 13 calls once,
	// for about 500 ms of batches), plus the first call and the drain's.
	if limit := int(sent/every) + 2; len(calls) > limit {
		t.Errorf("%d calls for 60 batches sent over %v with a %v interval, want at most %d: %v", len(calls), sent, every, limit, calls)
	}
	if d := starts[0].Sub(firstSeen); d > every/2 {
		t.Errorf("the first call started %v after its batch was ready, want no wait", d)
	}
}

// Cancelling the work while a batch waits for the interval ends the step: the waiting batch is
// not handed to it (not committed: replayed after a restart), and nothing blocks.
func TestRunStagesGroupedStepEveryCancelled(t *testing.T) {
	src := make(chan *batch)
	firstCall := make(chan struct{})
	go func() {
		defer close(src)
		src <- &batch{msgs: make([]kafka.Message, 1)}
		<-firstCall
		src <- &batch{msgs: make([]kafka.Message, 2)} // waits for the next call, an hour away
	}()
	work, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen []int
	done := make(chan error, 1)
	go func() {
		done <- runStages(work, cancel, src, groupedEvery(func(_ context.Context, bs []*batch) error {
			for _, b := range bs {
				seen = append(seen, len(b.msgs))
			}
			if len(seen) == 1 {
				close(firstCall)
				time.AfterFunc(20*time.Millisecond, cancel) // during the wait for the next call
			}
			return nil
		}, time.Hour))
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("runStages did not return after the work was cancelled during the interval")
	}
	if len(seen) != 1 || seen[0] != 1 {
		t.Fatalf("the step saw %v, want only the first batch", seen)
	}
}
