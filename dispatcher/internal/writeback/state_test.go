package writeback

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	st := func(s int, d time.Duration) State { return State{Status: s, OccurredAt: t0.Add(d)} }
	tests := []struct {
		name  string
		last  State
		known bool
		next  State
		allow bool
		want  string
	}{
		{"first delivered", State{}, false, st(1, 0), false, ""},
		{"first failed", State{}, false, st(2, 0), false, ""},
		{"repeat", st(1, 0), true, st(1, time.Second), false, SkipAlreadySent},
		{"older", st(1, 0), true, st(2, -time.Second), true, SkipOlderThanSent},
		{"failed to delivered", st(2, 0), true, st(1, time.Second), true, SkipFailedToDelivered},
		{"delivered to failed, not allowed", st(1, 0), true, st(2, time.Second), false, SkipDeliveredToFailedNotOK},
		{"delivered to failed, allowed", st(1, 0), true, st(2, time.Second), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.last, tt.known, tt.next, tt.allow); got != tt.want {
				t.Fatalf("Decide = %q, want %q", got, tt.want)
			}
		})
	}
}
