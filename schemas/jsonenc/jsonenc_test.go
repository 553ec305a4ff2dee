package jsonenc

import (
	"encoding/json"
	"testing"
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
