package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunLinesUpTheTailWithThePauses: 1,000 replies of 2 ms, one every 10 ms, then 10 of 30 ms
// sent during a broker pause (their events written after the reply) and 5 of 25 ms sent
// together later with no pause, whose events were written 3 ms after sending, 22 ms before the
// reply: the slowest 1 % are those 15 (p99 rounds to the 25 ms ones), 10 of them in the pause.
func TestRunLinesUpTheTailWithThePauses(t *testing.T) {
	base := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	var trace strings.Builder
	trace.WriteString("first_at_us,acked_at_us,written_at_us\n")
	add := func(sent time.Time, lat, written time.Duration) {
		w := int64(0)
		if written != 0 {
			w = sent.Add(written).UnixMicro()
		}
		fmt.Fprintf(&trace, "%d,%d,%d\n", sent.UnixMicro(), sent.Add(lat).UnixMicro(), w)
	}
	for i := range 1000 {
		add(base.Add(time.Duration(i)*10*time.Millisecond), 2*time.Millisecond, 0)
	}
	pauseEnd := base.Add(3*time.Second + 20*time.Millisecond)
	for i := range 10 {
		add(base.Add(3*time.Second+time.Duration(i)*time.Millisecond), 30*time.Millisecond, 31*time.Millisecond)
	}
	for i := range 5 {
		add(base.Add(7*time.Second+250*time.Millisecond+time.Duration(i)*time.Millisecond), 25*time.Millisecond, 3*time.Millisecond)
	}
	sp := strings.Join([]string{
		"[2026-12-01T02:59:00.000+0000] Safepoint \"G1CollectForAllocation\", Time since last: 1 ns, Reaching safepoint: 1 ns, Cleanup: 1 ns, At safepoint: 1 ns, Total: 20000000 ns", // before the window
		"[2026-12-01T03:00:01.000+0000] GC(7) Pause Young (Normal) (G1 Evacuation Pause) 434M->235M(512M) 14.956ms",
		"[" + pauseEnd.Format("2006-01-02T15:04:05.000-0700") + "] Safepoint \"G1CollectForAllocation\", Time since last: 3040795427 ns, Reaching safepoint: 109676 ns, Cleanup: 9693 ns, At safepoint: 20752860 ns, Total: 20000000 ns",
		"[2026-12-01T03:00:05.000+0000] Safepoint \"Cleanup\", Time since last: 1 ns, Reaching safepoint: 1 ns, Cleanup: 1 ns, At safepoint: 1 ns, Total: 200000 ns", // below -min-pause
	}, "\n")
	dir := t.TempDir()
	tp, spp := filepath.Join(dir, "trace.csv"), filepath.Join(dir, "sp.log")
	if err := os.WriteFile(tp, []byte(trace.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spp, []byte(sp), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-trace", tp, "-safepoints", spp}, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"replies 1015 ",
		"p50 2.0 ms, p99 25.0 ms",
		"broker pauses in the window: 1, 20.0 ms in all",
		"slowest 1 % (15): 10 overlap a broker pause (66.7 %)",
		"of all replies 1.2 % do", // the 10, and the two 2 ms replies sent during the pause
		"p99 of the replies overlapping no pause: 2.0 ms",
		"by 100 ms of sending (most first): 7.2 s: 5",
		"the event was written before the reply arrived for 5 (33.3 %), a median 22.0 ms before",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("first_at_us,acked_at_us\n12,13,14,15\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.log")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{}, {"-trace", bad, "-safepoints", empty}, {"-trace", filepath.Join(dir, "none"), "-safepoints", empty}} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}
