package jsonenc

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/schemas"
)

func FuzzAppendStringIsMarshal(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " back \ slash`, "<a&b>", "\x00\x1f\t\n\r\b\f", "\u2028\u2029", "\xff\xfe", "骑手接单", "\U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

func FuzzAppendTimeIsAppendFormat(f *testing.F) {
	for _, ms := range []int64{0, 1, -1, 1_763_800_000_123, 253402300799999, 253402300800000, -62135596800000, -62135596800001, 1 << 50, -(1 << 50)} {
		f.Add(ms, int64(0))
	}
	f.Add(int64(1_763_800_000_123), int64(456789))
	f.Fuzz(func(t *testing.T, ms, ns int64) {
		tm := time.UnixMilli(ms).Add(time.Duration(ns % 1e6)).In(time.FixedZone("x", 8*3600))
		want := tm.UTC().AppendFormat(nil, schemas.TimeLayout)
		if got := AppendTime(nil, tm); string(got) != string(want) {
			t.Fatalf("%v: got %s, want %s", tm, got, want)
		}
	})
}
