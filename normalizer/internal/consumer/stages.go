package consumer

import (
	"context"
	"sync"
)

// stage is one step of the loop's pipeline. It is handed one batch at a time, in order, and
// returns an error only when it cannot go on (its context ended).
type stage func(context.Context, *batch) error

// runStages passes the batches of src through the stages, each stage in a goroutine of its own
// handling one batch at a time, in order; so consecutive batches overlap across stages while
// every stage sees them in src's order. When src is closed, each stage finishes the batches it
// was handed and closes its output: that is the drain. The first stage error cancels work (so
// the stages before it stop retrying) and is returned; the batches behind a failed stage are
// dropped, never committed, so they are replayed after a restart.
func runStages(work context.Context, cancel context.CancelFunc, src <-chan *batch, stages ...stage) error {
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	in := src
	for _, st := range stages {
		out := make(chan *batch, 1)
		wg.Add(1)
		go func(st stage, in <-chan *batch, out chan<- *batch) {
			defer wg.Done()
			defer close(out)
			failed := false
			for b := range in {
				if failed {
					continue // keep draining in, so that no stage before this one blocks
				}
				if err := st(work, b); err != nil {
					errOnce.Do(func() { runErr = err })
					cancel()
					failed = true
					continue
				}
				out <- b
			}
		}(st, in, out)
		in = out
	}
	for range in { // the last stage's output: nobody needs the finished batches
	}
	wg.Wait()
	return runErr
}
