package consumer

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// progress says whether the loop moves. It is what readiness shows under CheckLoop, apart from
// the dependency pings (a ping that succeeds must not hide a loop that does not move):
//
//   - a Kafka or Redis call of the loop that failed and was not yet retried successfully;
//   - a stall: the loop has work (records fetched and not yet finished) and has not finished a
//     batch for stallAfter, whatever the cause (a call that hangs without failing, a bug).
type progress struct {
	mu         sync.Mutex
	now        func() time.Time
	stallAfter time.Duration
	pending    int              // records fetched and not yet finished
	since      time.Time        // the last progress, or when the loop last had no work
	failures   map[string]error // per action, the last failure not yet followed by a success
}

func newProgress(now func() time.Time, stallAfter time.Duration) *progress {
	return &progress{now: now, stallAfter: stallAfter, since: now(), failures: map[string]error{}}
}

// fetched counts n records taken into the loop.
func (p *progress) fetched(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending == 0 {
		p.since = p.now() // work starts now: an idle loop is not a stalled one
	}
	p.pending += n
}

// finished counts n records whose batch was finished (committed, or left for a harmless replay
// after the commit attempts ran out): progress.
func (p *progress) finished(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = max(0, p.pending-n)
	p.since = p.now()
}

// failed records that action failed with err; succeeded clears it.
func (p *progress) failed(action string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures[action] = err
}

func (p *progress) succeeded(action string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.failures, action)
}

// err is nil while the loop is healthy.
func (p *progress) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	actions := make([]string, 0, len(p.failures))
	for a := range p.failures {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	for _, a := range actions {
		errs = append(errs, fmt.Errorf("%s: %w", a, p.failures[a]))
	}
	now := p.now()
	if p.pending == 0 {
		p.since = now
	} else if idle := now.Sub(p.since); idle >= p.stallAfter {
		errs = append(errs, fmt.Errorf("no progress for %s with %d records in flight", idle.Round(time.Millisecond), p.pending))
	}
	return errors.Join(errs...)
}
