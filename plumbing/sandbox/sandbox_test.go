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

func TestBookBounded(t *testing.T) {
	var b Book[int]
	for range MaxCallLog + 3 {
		b.RecordLocking("ok", func(seq int) int { return seq })
	}
	b.RecordLocking("bad", func(seq int) int { return seq })
	calls := b.Calls(nil)
	if len(calls) != MaxCallLog || calls[0] != 1 || calls[MaxCallLog-1] != MaxCallLog {
		t.Fatalf("kept %d calls from %d to %d, want %d from 1", len(calls), calls[0], calls[len(calls)-1], MaxCallLog)
	}
	c := Read(&b, func(c CallCounts) CallCounts { return c })
	if c.Calls != MaxCallLog+4 || c.CallsByOutcome["ok"] != MaxCallLog+3 || c.CallsByOutcome["bad"] != 1 {
		t.Fatalf("counts %+v", c)
	}
	c.CallsByOutcome["ok"] = 0
	if b.Counts().CallsByOutcome["ok"] == 0 {
		t.Fatal("Counts shares its map with the book")
	}
	forgot := false
	b.Reset(func() { forgot = true })
	b.RecordLocking("ok", func(seq int) int { return seq })
	if got := b.Calls(nil); !forgot || len(got) != 1 || got[0] != 1 || b.Counts().Calls != 1 {
		t.Fatalf("after reset (forgot %v): calls %v counts %+v", forgot, got, b.Counts())
	}
	if odd := b.Calls(func(n int) bool { return n%2 == 1 }); len(odd) != 1 {
		t.Fatalf("filtered calls %v", odd)
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
