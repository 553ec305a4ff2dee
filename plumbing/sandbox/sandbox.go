// Package sandbox is what the partner sandboxes (the dispatcher's ddsandbox for Dangdang, the
// ingress's elemesandbox for Eleme) share apart from their protocols: the faults armed for the
// next calls, the bounded call log with its counters, the transport faults (slow answers,
// timeouts, HTTP 5xx), the admin routes over them, and the skeleton of a sandbox command. Each
// sandbox keeps its own wire protocol, its own fault kinds and what a fault matches.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"
)

// The transport fault kinds every sandbox has: they act on the HTTP exchange, not the protocol.
const (
	FaultHTTP5xx = "http_5xx" // answer the fault's status (a sandbox's default when 0) with a plain body
	FaultTimeout = "timeout"  // hold the call until the client gives up (or the delay), apply nothing
	FaultSlow    = "slow"     // wait the delay, then answer normally
)

// CheckFault is the check every sandbox makes of a fault before arming it: a kind it knows,
// times and delay_ms not negative.
func CheckFault(kind string, times, delayMS int, kinds ...string) error {
	if !slices.Contains(kinds, kind) {
		return fmt.Errorf("unknown fault kind %q", kind)
	}
	if times < 0 || delayMS < 0 {
		return errors.New("times and delay_ms must be >= 0")
	}
	return nil
}

// Fault is what a sandbox's fault type F tells a FaultSet.
type Fault[F any] interface {
	// Armable checks the fault and returns it as it is to be armed, with the number of calls it
	// is armed for (0: until cleared).
	Armable() (F, int, error)
}

// FaultSet is a sandbox's armed faults of type F, in the order they were armed. A sandbox embeds
// it for its Inject, Faults and ClearFaults; the zero value is an empty set, safe for concurrent
// use.
type FaultSet[F Fault[F]] struct {
	mu    sync.Mutex
	armed []*armed[F]
}

type armed[F any] struct {
	fault       F
	times, used int
}

// Inject checks f and arms it.
func (fs *FaultSet[F]) Inject(f F) error {
	a, times, err := f.Armable()
	if err != nil {
		return err
	}
	fs.mu.Lock()
	fs.armed = append(fs.armed, &armed[F]{fault: a, times: times})
	fs.mu.Unlock()
	return nil
}

// ClearFaults disarms every fault.
func (fs *FaultSet[F]) ClearFaults() {
	fs.mu.Lock()
	fs.armed = nil
	fs.mu.Unlock()
}

// Faults returns the faults still armed (never nil).
func (fs *FaultSet[F]) Faults() []F {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]F, 0, len(fs.armed))
	for _, a := range fs.armed {
		out = append(out, a.fault)
	}
	return out
}

// TakeFaults returns the armed faults that match a call, in the order they were armed, and uses
// one call of each; a fault whose calls are used up is disarmed.
func (fs *FaultSet[F]) TakeFaults(match func(F) bool) []F {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []F
	kept := fs.armed[:0]
	for _, a := range fs.armed {
		if match(a.fault) {
			out = append(out, a.fault)
			a.used++
			if a.times > 0 && a.used >= a.times {
				continue
			}
		}
		kept = append(kept, a)
	}
	clear(fs.armed[len(kept):])
	fs.armed = kept
	return out
}

// Credentials are the credentials of type T a sandbox knows, by the key that Key gives (its
// app_key). Safe for concurrent use; use NewCredentials.
type Credentials[T any] struct {
	key func(T) string
	mu  sync.Mutex
	m   map[string]T
}

// NewCredentials returns credentials keyed by key, knowing creds.
func NewCredentials[T any](key func(T) string, creds ...T) *Credentials[T] {
	c := &Credentials[T]{key: key, m: map[string]T{}}
	for _, cr := range creds {
		c.m[key(cr)] = cr
	}
	return c
}

// Add adds or replaces cr.
func (c *Credentials[T]) Add(cr T) {
	c.mu.Lock()
	c.m[c.key(cr)] = cr
	c.mu.Unlock()
}

// Get returns the credential of key.
func (c *Credentials[T]) Get(key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cr, ok := c.m[key]
	return cr, ok
}

// MaxCallLog bounds a sandbox's call log: calls beyond it are counted but not kept.
const MaxCallLog = 100000

// CallCounts are the counters of GET /sandbox/stats that every sandbox has.
type CallCounts struct {
	Calls          int            `json:"calls"`
	CallsByOutcome map[string]int `json:"calls_by_outcome"`
}

// Book is a sandbox's book of calls of type C: the call log, the call counters, and the lock that
// the sandbox takes over its own state too, so that what the counters say and what the state
// holds agree. Record and Counts want the lock held; Calls, Read and Reset take it.
type Book[C any] struct {
	sync.Mutex
	calls  []C
	counts CallCounts
}

// Record counts one call with outcome and, while the log has room, keeps the entry that entry
// makes of the call's sequence number (1 for the first call since the start or Reset).
func (b *Book[C]) Record(outcome string, entry func(seq int) C) {
	if b.counts.CallsByOutcome == nil {
		b.counts.CallsByOutcome = map[string]int{}
	}
	b.counts.Calls++
	b.counts.CallsByOutcome[outcome]++
	if len(b.calls) < MaxCallLog {
		b.calls = append(b.calls, entry(b.counts.Calls))
	}
}

// RecordLocking is Record taking the lock.
func (b *Book[C]) RecordLocking(outcome string, entry func(seq int) C) {
	b.Lock()
	b.Record(outcome, entry)
	b.Unlock()
}

// Calls returns a copy of the kept calls that keep accepts (all when keep is nil); never nil.
func (b *Book[C]) Calls(keep func(C) bool) []C {
	b.Lock()
	defer b.Unlock()
	out := make([]C, 0, len(b.calls))
	for _, c := range b.calls {
		if keep == nil || keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// Counts returns a copy of the counters.
func (b *Book[C]) Counts() CallCounts {
	byOutcome := maps.Clone(b.counts.CallsByOutcome)
	if byOutcome == nil {
		byOutcome = map[string]int{}
	}
	return CallCounts{Calls: b.counts.Calls, CallsByOutcome: byOutcome}
}

// Read returns what read makes of the counters and the sandbox's state, under the lock.
func Read[C, S any](b *Book[C], read func(CallCounts) S) S {
	b.Lock()
	defer b.Unlock()
	return read(b.Counts())
}

// Reset forgets every call and zeroes the counters, and under the same lock runs forget, which
// forgets the sandbox's own state.
func (b *Book[C]) Reset(forget func()) {
	b.Lock()
	defer b.Unlock()
	b.calls, b.counts = nil, CallCounts{}
	forget()
}

// Wait waits d, or less when the client abandons the request.
func Wait(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// ActTransport acts out a transport fault of kind on the exchange and says whether it answered
// the call. Slow waits delay and does not answer: the call goes on. Timeout waits delay (a minute
// when 0), calls record and answers 504; http_5xx calls record and answers status. Any other kind
// is not a transport fault: nothing happens.
func ActTransport(w http.ResponseWriter, r *http.Request, kind string, delay time.Duration, status int, record func()) bool {
	switch kind {
	case FaultSlow:
		Wait(r, delay)
	case FaultTimeout:
		if delay == 0 {
			delay = time.Minute
		}
		Wait(r, delay)
		record()
		http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
		return true
	case FaultHTTP5xx:
		record()
		http.Error(w, "sandbox injected error", status)
		return true
	}
	return false
}

// Admin is a sandbox as the shared admin routes see it, with faults of type F and stats of type S.
type Admin[F, S any] interface {
	// Inject checks and arms a fault.
	Inject(F) error
	// Faults returns the faults still armed.
	Faults() []F
	ClearFaults()
	Stats() S
	// Reset forgets the sandbox's calls, counters, faults and state (its credentials stay).
	Reset()
}

// Mount adds to mux the admin routes every sandbox serves:
//
//	GET    /sandbox/stats    the sandbox's counters
//	GET    /sandbox/faults   faults still armed
//	POST   /sandbox/faults   arm a fault (JSON F); 201 with the fault, 400 {"error"} when refused
//	DELETE /sandbox/faults   clear every fault
//	POST   /sandbox/reset    forget calls, counters, faults and state
func Mount[F, S any](mux *http.ServeMux, sb Admin[F, S]) {
	mux.HandleFunc("GET /sandbox/stats", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, sb.Stats())
	})
	mux.HandleFunc("GET /sandbox/faults", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, sb.Faults())
	})
	mux.HandleFunc("POST /sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		var f F
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := sb.Inject(f); err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		WriteJSON(w, http.StatusCreated, f)
	})
	mux.HandleFunc("DELETE /sandbox/faults", func(w http.ResponseWriter, _ *http.Request) {
		sb.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /sandbox/reset", func(w http.ResponseWriter, _ *http.Request) {
		sb.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
}

// WriteJSON answers status with v as indented JSON, the form of every admin answer.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError answers status with {"error": msg}.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"error": msg})
}
