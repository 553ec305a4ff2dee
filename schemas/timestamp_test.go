package schemas

import (
	"encoding/json"
	"testing"
	"time"
)

func TestTimestampJSON(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), `"2026-12-01T08:00:00.000Z"`},
		{time.Date(2026, 12, 1, 16, 0, 0, 123_456_789, shanghai), `"2026-12-01T08:00:00.123Z"`},
		{time.Date(1999, 12, 31, 23, 59, 59, 999_999_999, time.UTC), `"1999-12-31T23:59:59.999Z"`},
		{time.UnixMilli(0), `"1970-01-01T00:00:00.000Z"`},
	} {
		got, err := json.Marshal(Timestamp{tc.in})
		if err != nil || string(got) != tc.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
		var back Timestamp
		if err := json.Unmarshal(got, &back); err != nil || !back.Equal(tc.in.Truncate(time.Millisecond)) {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", got, back, err, tc.in.Truncate(time.Millisecond))
		}
	}
	ts := At(time.Now())
	if n := testing.AllocsPerRun(100, func() { _, _ = ts.MarshalJSON() }); n > 1 {
		t.Errorf("MarshalJSON made %v allocations, want 1", n)
	}
}
