package callback

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// validSeeds are texts where JSON validators are known to differ: bytes that are not UTF-8,
// control characters, lone surrogates, number edge cases, whitespace kinds, trailing data.
var validSeeds = []string{
	`{}`, `[]`, `null`, `0`, `-0`, `01`, `1.`, `.5`, `1e`, `1e+`, `-`, `1E400`, `-0.0e-0`,
	`123456789012345678901234567890`, `{"a":1}x`, `{"a":1} `, "{\"a\":1}\t\r\n", "\v{}", "\u00a0{}",
	"{\"a\":\"\xff\"}", "{\"\xc3\":1}", "\"\xed\xa0\x80\"", `"\ud800"`, `"\udc00\ud800"`, `"\u12"`,
	`"\x41"`, `"\/"`, "\"\x00\"", "\"\x1f\"", "\"\x7f\"", `{"a" : [ true , false , null ] }`,
	`{"a":tru}`, `{"a":nul}`, `[1,]`, `{"a":1,}`, `{,}`, `{"a"}`, `{"a":}`, `{1:2}`, `[`, `{"a":[}`,
	`{"a":{"b":{"c":[[[]]]}}}`, `{"message":"{\"orderId\":\"3100000000000000000\"}","type":56}`,
}

// FuzzValid: Split's validation accepts exactly what encoding/json's Valid accepts.
func FuzzValid(f *testing.F) {
	for _, s := range validSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := valid(b), json.Valid(b); got != want {
			t.Fatalf("valid(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

// TestValidNesting: a value nested deeper than encoding/json allows is refused as it refuses
// it, and one just within the limit is accepted, whichever validator the body's length picks.
func TestValidNesting(t *testing.T) {
	nest := func(depth int, pad int) []byte {
		b := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		return []byte(`{"a":` + b + `,"p":"` + strings.Repeat("x", pad) + `"}`)
	}
	for _, c := range []struct {
		name  string
		body  []byte
		long  bool // encoding/json validates it, not gjson
		valid bool
	}{
		{"short, shallow", nest(10, 0), false, true},
		{"short, 9,990 deep", nest(maxNesting-10, 0), false, true},
		{"long, 9,999 deep", nest(maxNesting-1, 5000), true, true},
		{"long, 10,001 deep", nest(maxNesting+1, 0), true, false},
		{"long, 100,000 deep", nest(100000, 0), true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if long := len(c.body) >= 2*maxNesting; long != c.long {
				t.Fatalf("%d bytes: long = %v, the case wants %v", len(c.body), long, c.long)
			}
			if got := valid(c.body); got != c.valid || json.Valid(c.body) != c.valid {
				t.Fatalf("valid = %v, encoding/json %v, want %v", got, json.Valid(c.body), c.valid)
			}
			if _, err := Split(c.body); (err == nil) != c.valid {
				t.Fatalf("Split: %v, want valid %v", err, c.valid)
			}
		})
	}
}

// BenchmarkValid compares the two validators on an Eleme push (the hot path's body):
//
//	go test -run=^$ -bench=Valid -benchmem ./internal/callback
func BenchmarkValid(b *testing.B) {
	body := []byte(`{"requestId":"100000000123456789","type":10,"appId":62933118,"message":"{\"id\":\"3100000000000000000\",\"orderId\":\"3100000000000000000\",\"state\":\"valid\",\"shopId\":968861,\"updateTime\":1796000000000,\"role\":1,\"name\":\"张三\",\"phone\":\"13800000000\"}","shopId":968861,"timestamp":1796000000000,"signature":"D3B8C0E0A1F2B3C4D5E6F708192A3B4C","userId":62864532}`)
	if !bytes.Equal(bytes.TrimSpace(body), body) || !json.Valid(body) {
		b.Fatal("bad fixture")
	}
	b.Run("valid", func(b *testing.B) {
		for b.Loop() {
			if !valid(body) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if !json.Valid(body) {
				b.Fatal("refused")
			}
		}
	})
}
