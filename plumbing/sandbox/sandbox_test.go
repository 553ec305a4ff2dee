package sandbox

import (
	"errors"
	"fmt"
	"testing"
)

// testFault is a fault named for what it matches ("a…" or "b…") and armed for Times calls.
type testFault struct {
	Name  string
	Times int
}

func (f testFault) String() string { return f.Name }

func (f testFault) Armable() (testFault, int, error) {
	if f.Times < 0 {
		return f, 0, errors.New("negative times")
	}
	return f, f.Times, nil
}

func TestFaultSetTakeFaults(t *testing.T) {
	var fs FaultSet[testFault]
	for _, f := range []testFault{{"a-once", 1}, {"b-twice", 2}, {"refused", -1}, {"a-forever", 0}} {
		if err := fs.Inject(f); (err != nil) != (f.Times < 0) {
			t.Fatalf("inject %s: %v", f, err)
		}
	}
	isA := func(f testFault) bool { return f.Name[0] == 'a' }
	all := func(testFault) bool { return true }
	tests := []struct {
		match     func(testFault) bool
		want      string
		wantArmed string
	}{
		{isA, "[a-once a-forever]", "[b-twice a-forever]"},
		{isA, "[a-forever]", "[b-twice a-forever]"},
		{all, "[b-twice a-forever]", "[b-twice a-forever]"},
		{all, "[b-twice a-forever]", "[a-forever]"},
	}
	for i, tt := range tests {
		if got := fmt.Sprint(fs.TakeFaults(tt.match)); got != tt.want {
			t.Errorf("take %d = %s, want %s", i, got, tt.want)
		}
		if got := fmt.Sprint(fs.Faults()); got != tt.wantArmed {
			t.Errorf("after take %d armed %s, want %s", i, got, tt.wantArmed)
		}
	}
	fs.ClearFaults()
	if got := fs.Faults(); got == nil || len(got) != 0 {
		t.Errorf("after clear armed %#v, want empty and not nil", got)
	}
}

func TestCallLogBounded(t *testing.T) {
	var l CallLog[int]
	for range MaxCallLog + 3 {
		l.Record("ok", func(seq int) int { return seq })
	}
	l.Record("bad", func(seq int) int { return seq })
	calls := l.Calls(nil)
	if len(calls) != MaxCallLog || calls[0] != 1 || calls[MaxCallLog-1] != MaxCallLog {
		t.Fatalf("kept %d calls from %d to %d, want %d from 1", len(calls), calls[0], calls[len(calls)-1], MaxCallLog)
	}
	c := l.Counts()
	if c.Calls != MaxCallLog+4 || c.CallsByOutcome["ok"] != MaxCallLog+3 || c.CallsByOutcome["bad"] != 1 {
		t.Fatalf("counts %+v", c)
	}
	c.CallsByOutcome["ok"] = 0
	if l.Counts().CallsByOutcome["ok"] == 0 {
		t.Fatal("Counts shares its map with the log")
	}
	l.Reset()
	l.Record("ok", func(seq int) int { return seq })
	if got := l.Calls(nil); len(got) != 1 || got[0] != 1 || l.Counts().Calls != 1 {
		t.Fatalf("after reset: calls %v counts %+v", got, l.Counts())
	}
}

func TestCheckFault(t *testing.T) {
	tests := []struct {
		kind           string
		times, delayMS int
		want           string
	}{
		{"slow", 0, 10, "<nil>"},
		{"nope", 0, 0, `unknown fault kind "nope"`},
		{"slow", -1, 0, "times and delay_ms must be >= 0"},
		{"slow", 0, -1, "times and delay_ms must be >= 0"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(CheckFault(tt.kind, tt.times, tt.delayMS, FaultSlow, FaultTimeout)); got != tt.want {
			t.Errorf("CheckFault(%q, %d, %d) = %s, want %s", tt.kind, tt.times, tt.delayMS, got, tt.want)
		}
	}
}
