package chaos

import (
	"encoding/gob"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// ledgerFile is a Ledger as written to a file: what a workload run in another process (so that
// its CPU is its own) hands back for Settle and Check.
type ledgerFile struct {
	Trans             map[string]*TransState
	Orders            map[string][]string
	PoisonAcked       map[string]bool
	PoisonSent        map[string]bool
	Counters          map[string]int64
	ByStatus          map[int]int64
	ReplyLatency      []time.Duration
	SendDelay         []time.Duration
	Started, Finished time.Time
}

// counters names the ledger's counters for the file.
func (l *Ledger) counters() map[string]*atomic.Int64 {
	return map[string]*atomic.Int64{
		"sent": &l.Sent, "acked": &l.Acked, "forged": &l.Forged, "forged_accepted": &l.ForgedAccepted,
		"malformed": &l.Malformed, "malformed_ok": &l.MalformedOK, "net_errors": &l.NetErrors, "refused": &l.Refused,
		"held_by_platform": &l.HeldByPlatform, "gave_up": &l.GaveUp, "offered": &l.Offered, "late": &l.Late,
		"unexpected_4xx": &l.Unexpected4xx,
	}
}

// Save writes the ledger (of a finished run) to w.
func (l *Ledger) Save(w io.Writer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := ledgerFile{Trans: l.Trans, Orders: l.Orders, PoisonAcked: l.PoisonAcked, PoisonSent: l.PoisonSent,
		Counters: map[string]int64{}, ByStatus: l.Statuses(), ReplyLatency: l.ReplyLatency, SendDelay: l.SendDelay, Started: l.Started, Finished: l.Finished}
	for k, c := range l.counters() {
		f.Counters[k] = c.Load()
	}
	if err := gob.NewEncoder(w).Encode(&f); err != nil {
		return fmt.Errorf("encode ledger: %w", err)
	}
	return nil
}

// LoadLedger reads a ledger written by Save.
func LoadLedger(r io.Reader) (*Ledger, error) {
	var f ledgerFile
	if err := gob.NewDecoder(r).Decode(&f); err != nil {
		return nil, fmt.Errorf("decode ledger: %w", err)
	}
	l := newLedger()
	for k, v := range f.Trans {
		l.Trans[k] = v
	}
	for k, v := range f.Orders {
		l.Orders[k] = v
	}
	for k, v := range f.PoisonAcked {
		l.PoisonAcked[k] = v
	}
	for k, v := range f.PoisonSent {
		l.PoisonSent[k] = v
	}
	for k, c := range l.counters() {
		c.Store(f.Counters[k])
	}
	for code, n := range f.ByStatus {
		v := new(atomic.Int64)
		v.Store(n)
		l.ByStatus.Store(code, v)
	}
	l.ReplyLatency, l.SendDelay, l.Started, l.Finished = f.ReplyLatency, f.SendDelay, f.Started, f.Finished
	return l, nil
}
