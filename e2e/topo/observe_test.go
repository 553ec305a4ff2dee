package topo

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// Recovery is measured from the fault to the first sample after the fault ended at which every
// group's lag is back to zero or to its pre-fault level; a lag that could not be read (-1) is
// not a recovery.
func TestRecovery(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	sample := func(s int, lags ...int64) LagSample { return LagSample{At: at(s), Lag: lags} }
	for _, tc := range []struct {
		name    string
		samples []LagSample
		end     int // the fault (at 10 s) ended at end s
		want    time.Duration
		ok      bool
	}{
		{"back to zero", []LagSample{sample(0, 0, 0), sample(10, 50, 3), sample(12, 0, 40), sample(14, 0, 0)}, 12, 4 * time.Second, true},
		{"back to the pre-fault level", []LagSample{sample(8, 5, 7), sample(10, 50, 3), sample(12, 6, 7), sample(14, 5, 7)}, 12, 4 * time.Second, true},
		{"a sample before the fault ended does not count", []LagSample{sample(0, 0, 0), sample(10, 0, 0), sample(11, 9, 0), sample(13, 0, 0)}, 11, 3 * time.Second, true},
		{"unreadable lag is not a recovery", []LagSample{sample(0, 0, 0), sample(12, -1, 0), sample(15, 0, 0)}, 12, 5 * time.Second, true},
		{"never", []LagSample{sample(0, 0, 0), sample(12, 3, 0), sample(15, 0, 1)}, 12, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Recovery(tc.samples, at(10), at(tc.end))
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %s %v, want %s %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// CPUTime follows this process's CPU use as the kernel's own accounting (getrusage) sees it,
// across a busy loop that burns 300 ms of CPU; a process that does not exist has none.
func TestCPUTime(t *testing.T) {
	rusage := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before, ok := CPUTime(os.Getpid())
	if !ok {
		t.Fatal("no CPU time for this process")
	}
	r0 := rusage()
	x := 0
	for rusage()-r0 < 300*time.Millisecond {
		for range 1_000_000 { // user time, mostly: getrusage itself is system time
			x++
		}
	}
	after, _ := CPUTime(os.Getpid())
	r1 := rusage()
	if got, want := after-before, r1-r0; got < want-50*time.Millisecond || got > want+50*time.Millisecond {
		t.Errorf("CPUTime grew by %v while getrusage counted %v (x=%d)", got, want, x)
	}
	if _, ok := CPUTime(1 << 30); ok {
		t.Error("CPU time of a process that does not exist")
	}
}
