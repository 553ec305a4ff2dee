// Package retry is the one retry policy of the pipeline: capped exponential backoff with jitter,
// built on github.com/cenkalti/backoff/v5. Every loop that retries (a produce, a commit, a
// Dangdang call, a topic bootstrap, a poll) takes its waits from a Policy, so the jitter formula,
// the cap and the way a cancelled context ends a wait are the same everywhere.
//
//	b := retry.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}.New()
//	for {
//		if err := try(); err == nil {
//			break
//		}
//		if err := retry.Sleep(ctx, b.Next()); err != nil {
//			return err // ctx ended
//		}
//	}
//
// or, for a single operation, retry.Do(ctx, policy, op).
package retry

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy describes the waits between attempts: the first wait is about Min, each next one
// Multiplier times longer (default 2), never above Max. Every wait is jittered by ±Jitter
// (default 0.5, i.e. a wait lies in [d/2, 3d/2]) so that many clients retrying the same broken
// dependency do not retry in step.
type Policy struct {
	Min        time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64
}

// Defaults used where a Policy leaves a field zero.
const (
	DefaultMin        = 100 * time.Millisecond
	DefaultMax        = 5 * time.Second
	DefaultMultiplier = 2
	DefaultJitter     = 0.5
)

// Backoff is one sequence of waits. It is not safe for concurrent use: each loop owns its own.
type Backoff struct {
	b   *backoff.ExponentialBackOff
	max time.Duration
}

// New starts a sequence of waits.
func (p Policy) New() *Backoff {
	if p.Min <= 0 {
		p.Min = DefaultMin
	}
	if p.Max <= 0 {
		p.Max = DefaultMax
	}
	if p.Max < p.Min {
		p.Max = p.Min
	}
	if p.Multiplier < 1 {
		p.Multiplier = DefaultMultiplier
	}
	if p.Jitter < 0 || p.Jitter > 1 {
		p.Jitter = DefaultJitter
	} else if p.Jitter == 0 {
		p.Jitter = DefaultJitter
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.Min
	b.MaxInterval = p.Max
	b.Multiplier = p.Multiplier
	b.RandomizationFactor = p.Jitter
	b.Reset()
	return &Backoff{b: b, max: p.Max}
}

// Next returns the next wait. The sequence never ends: callers bound it by their context or
// by counting attempts themselves.
func (b *Backoff) Next() time.Duration {
	d := b.b.NextBackOff()
	if d == backoff.Stop || d < 0 {
		return b.max
	}
	return d
}

// Reset starts the sequence again from Min, after a success.
func (b *Backoff) Reset() { b.b.Reset() }

// Sleep waits d, or returns ctx's error as soon as ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// PermanentError marks an error that retrying cannot fix; Do returns it at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that Do stops retrying and returns err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// Do calls op until it returns nil, a Permanent error (returned unwrapped), or ctx ends (then
// the last error of op joined with ctx's error). onRetry, when not nil, is told of each failure
// and the wait before the next attempt, for logging and metrics.
func Do(ctx context.Context, p Policy, op func(context.Context) error, onRetry func(err error, wait time.Duration)) error {
	b := p.New()
	for {
		err := op(ctx)
		if err == nil {
			return nil
		}
		var perm *PermanentError
		if errors.As(err, &perm) {
			return perm.Err
		}
		if ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		wait := b.Next()
		if onRetry != nil {
			onRetry(err, wait)
		}
		if serr := Sleep(ctx, wait); serr != nil {
			return errors.Join(err, serr)
		}
	}
}
