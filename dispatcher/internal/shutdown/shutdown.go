// Package shutdown is the dispatcher's two-stage stop, as one value handed to every part that
// runs: Soft ends when the service is asked to stop (stop taking work, flush what is pending,
// record outcomes), Hard ends when the grace period is over (abandon: calls and writes in flight
// are cancelled, and whatever was not finished completes with ErrStopped and is replayed later).
// Parts receive a Stop as an argument of Run; none keeps a context of its own.
package shutdown

import (
	"context"
	"errors"
	"time"
)

// ErrStopped completes work that was abandoned at a hard stop: its offset is not committed.
var ErrStopped = errors.New("dispatcher stopped before the outcome was durable")

// Stop is a soft and a hard end. The zero value never ends.
type Stop struct {
	soft, hard context.Context
}

// New returns a Stop whose soft end is ctx's and whose hard end comes grace after it, or when
// abandon is called, whichever is first. abandon must be called to release the timer.
func New(ctx context.Context, grace time.Duration) (s Stop, abandon func()) {
	hard, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopTimer := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-hard.Done():
		}
	})
	return Stop{soft: ctx, hard: hard}, func() { stopTimer(); cancel() }
}

// Never is a Stop that never ends (tests).
func Never() Stop { return Stop{soft: context.Background(), hard: context.Background()} }

// Soft ends when the service is asked to stop.
func (s Stop) Soft() <-chan struct{} { return s.ctx(s.soft).Done() }

// Hard is the context of work that is abandoned at the hard stop (HTTP calls, Kafka writes).
func (s Stop) Hard() context.Context { return s.ctx(s.hard) }

func (s Stop) ctx(c context.Context) context.Context {
	if c == nil {
		return context.Background()
	}
	return c
}
