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

// FuzzAppendTime: AppendTime writes what AppendFormat writes with TimeLayout, for any instant
// and zone, the years AppendFormat takes included.
func FuzzAppendTime(f *testing.F) {
	for _, s := range [][2]int64{{0, 0}, {1796000000, 123456789}, {-62135596800, 0}, {253402300799, 999999999},
		{253402300800, 0}, {-62135596801, 999999999}, {951782400, 1e6 - 1}, {1e12, 5e8}, {-1e12, 1}} {
		f.Add(s[0], s[1], int32(0))
		f.Add(s[0], s[1], int32(8*3600))
		f.Add(s[0], s[1], int32(-(12*3600 + 45*60)))
	}
	// Millisecond edges (the normalizer's events carry platform epochs in milliseconds).
	for _, ms := range []int64{1, -1, 1_763_800_000_123, 253402300799999, 253402300800000, -62135596800000, -62135596800001, 1 << 50, -(1 << 50)} {
		f.Add(ms/1000, ms%1000*1e6, int32(8*3600))
	}
	f.Fuzz(func(t *testing.T, sec, nsec int64, offset int32) {
		in := time.Unix(sec, nsec).In(time.FixedZone("z", int(offset%(26*3600))))
		want := in.UTC().AppendFormat([]byte("x"), TimeLayout)
		if got := AppendTime([]byte("x"), in); string(got) != string(want) {
			t.Fatalf("AppendTime(%v) = %s, AppendFormat %s", in, got, want)
		}
	})
}

// BenchmarkAppendTime: the timestamp every envelope and event carries, both ways.
//
//	go test -run=^$ -bench=AppendTime ./schemas
func BenchmarkAppendTime(b *testing.B) {
	now := time.Now()
	buf := make([]byte, 0, 32)
	b.Run("AppendTime", func(b *testing.B) {
		for b.Loop() {
			buf = AppendTime(buf[:0], now)
		}
	})
	b.Run("AppendFormat", func(b *testing.B) {
		for b.Loop() {
			buf = now.UTC().AppendFormat(buf[:0], TimeLayout)
		}
	})
}
