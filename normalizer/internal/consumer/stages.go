package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/orderpipe/pipeline/plumbing/retry"
)

// stage is one step of the loop's pipeline. It is handed one batch at a time, in order, and
// returns an error only when it cannot go on (its context ended).
type stage func(context.Context, *batch) error

// groupStage is a step handed, in order, every batch waiting for it at once: a step whose cost
// is per call rather than per batch (an offset commit) keeps up with any batch rate this way,
// instead of holding every stage before it to its own pace.
type groupStage func(context.Context, []*batch) error

// groupQueue is how many batches may wait for a grouped step.
const groupQueue = 256

// step is a stage or a groupStage, for runStages.
type step struct {
	run   groupStage
	group bool
	every time.Duration // a grouped step starts at most once per every (0: whenever handed one)
}

// one makes a step of a stage.
func one(st stage) step {
	return step{run: func(ctx context.Context, bs []*batch) error { return st(ctx, bs[0]) }}
}

// grouped makes a step of a groupStage.
func grouped(st groupStage) step { return step{run: st, group: true} }

// groupedEvery makes a step of a groupStage that starts at most once per every: a batch handed
// to it sooner waits, and everything that arrived meanwhile goes into the same call.
func groupedEvery(st groupStage, every time.Duration) step {
	return step{run: st, group: true, every: every}
}

// runStages passes the batches of src through the steps, each step in a goroutine of its own
// handling one batch (a grouped step: every batch waiting) at a time, in order; so consecutive
// batches overlap across steps while every step sees them in src's order. When src is closed,
// each step finishes the batches it was handed and closes its output: that is the drain. The
// first step error cancels work (so the steps before it stop retrying) and is returned; the
// batches behind a failed step are dropped, never committed, so they are replayed after a
// restart.
func runStages(work context.Context, cancel context.CancelFunc, src <-chan *batch, steps ...step) error {
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	in := src
	for i, st := range steps {
		size := 1
		if i+1 < len(steps) && steps[i+1].group {
			// Room for what gathers while the grouped step is in a call, so that the steps
			// before it are not held to its pace.
			size = groupQueue
		}
		out := make(chan *batch, size)
		wg.Add(1)
		go func(st step, in <-chan *batch, out chan<- *batch) {
			defer wg.Done()
			defer close(out)
			failed := false
			var last time.Time
			for b := range in {
				if failed {
					continue // keep draining in, so that no stage before this one blocks
				}
				var err error
				if st.every > 0 && !last.IsZero() {
					err = retry.Sleep(work, time.Until(last.Add(st.every)))
				}
				bs := []*batch{b}
			gather:
				for st.group {
					select {
					case more, ok := <-in:
						if !ok {
							break gather
						}
						bs = append(bs, more)
					default:
						break gather
					}
				}
				if err == nil {
					last = time.Now()
					err = st.run(work, bs)
				}
				if err != nil {
					errOnce.Do(func() { runErr = err })
					cancel()
					failed = true
					continue
				}
				for _, b := range bs {
					out <- b
				}
			}
		}(st, in, out)
		in = out
	}
	for range in { // the last stage's output: nobody needs the finished batches
	}
	wg.Wait()
	return runErr
}
