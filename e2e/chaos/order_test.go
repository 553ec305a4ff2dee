package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/schemas"
)

// rec is one hand-made record: order o, kind k, occurred at second sec, event id id, stale flag,
// at partition p / offset off.
func rec(o, k string, sec int64, id string, stale bool, p int, off int64) StatusRec {
	return StatusRec{Ev: schemas.StatusEvent{EventID: id, Platform: "dianwoda", OrderID: o, Kind: k, PlatformStatus: "s" + id,
		OccurredAt: schemas.UnixMilli(sec * 1000), Stale: stale}, Partition: p, Offset: off}
}

// Each case is a small topic in the order given (offsets as given) and the number of order
// violations a correct checker finds in it.
func TestOrderViolations(t *testing.T) {
	for _, tc := range []struct {
		name string
		recs []StatusRec
		want int
	}{
		{"in order", []StatusRec{rec("A", "delivery", 1, "a1", false, 0, 0), rec("A", "delivery", 2, "a2", false, 0, 1), rec("A", "delivery", 3, "a3", false, 0, 2)}, 0},
		{"one step back", []StatusRec{rec("A", "delivery", 1, "a1", false, 0, 0), rec("A", "delivery", 3, "a3", false, 0, 1), rec("A", "delivery", 2, "a2", false, 0, 2)}, 1},
		{"late step marked stale is fine", []StatusRec{rec("A", "delivery", 1, "a1", false, 0, 0), rec("A", "delivery", 3, "a3", false, 0, 1), rec("A", "delivery", 2, "a2", true, 0, 2)}, 0},
		// A stale event does not raise the high-water mark: a later non-stale one that is after
		// the last non-stale one is fine even if it is before the stale one.
		{"stale does not count as latest", []StatusRec{rec("A", "delivery", 1, "a1", false, 0, 0), rec("A", "delivery", 9, "a9", true, 0, 1), rec("A", "delivery", 2, "a2", false, 0, 2)}, 0},
		// The comparison is against the latest seen, not the previous record: two steps back
		// after the high-water mark are two violations.
		{"two behind the latest", []StatusRec{rec("A", "delivery", 5, "a5", false, 0, 0), rec("A", "delivery", 3, "a3", false, 0, 1), rec("A", "delivery", 4, "a4", false, 0, 2)}, 2},
		// A redelivered copy of an earlier event_id is a copy (deduped by consumers), not a
		// violation.
		{"redelivered copy", []StatusRec{rec("A", "delivery", 1, "a1", false, 0, 0), rec("A", "delivery", 2, "a2", false, 0, 1), rec("A", "delivery", 1, "a1", false, 0, 2)}, 0},
		// Orders and kinds are independent.
		{"other order", []StatusRec{rec("A", "delivery", 5, "a5", false, 0, 0), rec("B", "delivery", 1, "b1", false, 0, 1)}, 0},
		{"other kind", []StatusRec{rec("A", "delivery", 5, "a5", false, 0, 0), rec("A", "order", 1, "o1", false, 0, 1)}, 0},
		// Topic order is by offset, whatever order the collector appended in.
		{"sorted by offset", []StatusRec{rec("A", "delivery", 2, "a2", false, 0, 1), rec("A", "delivery", 1, "a1", false, 0, 0)}, 0},
		{"sorted by offset, back", []StatusRec{rec("A", "delivery", 1, "a1", false, 0, 1), rec("A", "delivery", 2, "a2", false, 0, 0)}, 1},
		// Same instant is not a regression.
		{"same instant", []StatusRec{rec("A", "delivery", 2, "x", false, 0, 0), rec("A", "delivery", 2, "y", false, 0, 1)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, det := OrderViolations(tc.recs)
			if got != tc.want {
				t.Errorf("got %d violations, want %d: %s", got, tc.want, strings.Join(det, "; "))
			}
			if got != len(det) {
				t.Errorf("%d violations but %d details", got, len(det))
			}
		})
	}
}

// Check reports the violations of routed topics too, and CheckRouted finds an event that never
// reached its routed topic.
func TestCheckRoutedTopics(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	l := newLedger()
	l.Started, l.Finished = t0, t0.Add(time.Second)
	status := []StatusRec{rec("A", "delivery", 1, "a1", false, 0, 0), rec("A", "delivery", 3, "a3", false, 0, 1)}
	c := &Collector{Status: status, Routed: map[string][]StatusRec{
		"delivery": {rec("A", "delivery", 3, "a3", false, 0, 0), rec("A", "delivery", 1, "a1", false, 0, 1)},
		"gone":     nil,
	}}
	r := &Report{}
	n, _ := OrderViolations(c.Routed["delivery"])
	if n != 1 {
		t.Fatalf("routed violations %d, want 1", n)
	}
	route := func(ev schemas.StatusEvent) []string { return []string{"delivery", "gone"} }
	CheckRouted(r, c, route, map[string]bool{"gone": true})
	if r.RoutedMissing != 0 {
		t.Errorf("nothing is missing on delivery; got %d: %v", r.RoutedMissing, r.Details)
	}
	c.Routed["delivery"] = c.Routed["delivery"][:1]
	CheckRouted(r, c, route, map[string]bool{"gone": true})
	if r.RoutedMissing != 1 {
		t.Errorf("a1 never reached delivery; got %d missing: %v", r.RoutedMissing, r.Details)
	}
	r = &Report{}
	CheckRouted(r, c, route, nil)
	if r.RoutedMissing != 3 { // not excused, the empty "gone" misses both events, delivery one
		t.Errorf("got %d missing, want 3: %v", r.RoutedMissing, r.Details)
	}
}
