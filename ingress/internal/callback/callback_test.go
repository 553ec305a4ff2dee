package callback

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	tests := []struct {
		give   string
		want   string
		wantOK bool
	}{
		{`"abc"`, "abc", true},
		{`"a\"b"`, `a"b`, true},
		{`"\u7528\u6237"`, "用户", true},
		{`"用户"`, "用户", true},
		{`1201961795738011871`, "1201961795738011871", true},
		{`-1.5e+10`, "-1.5e+10", true},
		{`0`, "0", true},
		{`01`, "", false},
		{`1.`, "", false},
		{`-`, "", false},
		{`1e`, "", false},
		{`true`, "", false},
		{`null`, "", false},
		{`{}`, "", false},
		{`[]`, "", false},
		{`"unterminated`, "", false},
		{``, "", false},
	}
	for _, tt := range tests {
		got, ok := Text(json.RawMessage(tt.give))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Text(%s) = %q, %v; want %q, %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}

// FuzzText: Text agrees with encoding/json on every input it accepts.
func FuzzText(f *testing.F) {
	for _, s := range []string{`"a"`, `"\n"`, `12`, `-0.5E3`, `"\u00e9"`, `1e`, `"é"`} {
		f.Add(s)
	}
	for _, s := range []string{`"a\"b\\c\/d\b\f\n\r\t"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00\u0041"`, `"\ud83dx"`, "\"\xff\xfe\"", `"\u12"`, `"\x"`, `"a\"`, "\"\x01\"", `"{\"orderId\":\"1\",\"name\":\"\u5f20\"}"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := Text(json.RawMessage(s))
		var str string
		if strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), `"`) && json.Unmarshal([]byte(s), &str) == nil {
			// encoding/json takes this string token: Text must take it too, with the same text.
			if !ok || got != str {
				t.Fatalf("Text(%q) = %q, %v; encoding/json says %q", s, got, ok, str)
			}
		}
		if !ok {
			return
		}
		var v any
		d := json.NewDecoder(stringsReader(s))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatalf("Text accepted %q, which is not JSON: %v", s, err)
		}
		switch v := v.(type) {
		case string:
			if v != got {
				t.Fatalf("Text(%q) = %q, json says %q", s, got, v)
			}
		case json.Number:
			if string(v) != got {
				t.Fatalf("Text(%q) = %q, json says %q", s, got, v)
			}
		default:
			t.Fatalf("Text accepted %q (%T)", s, v)
		}
	})
}

// SplitMember splits a nested object of an already validated body without validating it again,
// and refuses what is not an object.
func TestSplitMember(t *testing.T) {
	top, err := Object([]byte(`{"content":{"order_original_id":"FTP1","n":12,"o":{"a":[1,"}"]}},"s":"{\"a\":1}","x":[{}]}`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := SplitMember(top["content"])
	if err != nil {
		t.Fatal(err)
	}
	content := f.Map()
	if id, _ := Text(content["order_original_id"]); id != "FTP1" || string(content["n"]) != "12" || string(content["o"]) != `{"a":[1,"}"]}` {
		t.Errorf("members %q", content)
	}
	for _, k := range []string{"s", "x"} {
		if _, err := SplitMember(top[k]); err == nil {
			t.Errorf("SplitMember(%s) = nil error for %s", k, top[k])
		}
	}
	if _, err := SplitMember(nil); err == nil {
		t.Error("SplitMember(nil) = nil error")
	}
}

// FuzzSplit: Split, and Object built on it, agree with json.Unmarshal into a map of raw
// members: each name once (the last value of a repeated one), member for member; and refuse
// what Unmarshal refuses.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{`{}`, ` {"a" : 1 , "b":"x\"}" ,"c":{"d":[1,"]"]}} `, `{"a":1,"a":2}`, `{"\u0061":true,"a":false}`,
		`{"a\"b":1}`, `[]`, `null`, `{"a":1}x`, `{"a":-0.5e3,"b":null,"c":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Split(b)
		m, merr := Object(b)
		var want map[string]json.RawMessage
		if werr := json.Unmarshal(b, &want); werr != nil || want == nil {
			if err == nil || merr == nil {
				t.Fatalf("Split or Object accepted %q: %q, %q", b, got, m)
			}
			return
		}
		if err != nil || merr != nil {
			t.Fatalf("Split or Object refused %q: %v, %v", b, err, merr)
		}
		if len(got) != len(want) || len(m) != len(want) {
			t.Fatalf("%q: %d members (Object %d), want %d", b, len(got), len(m), len(want))
		}
		for k, v := range want {
			if g, ok := got.Get(k); !ok || string(g) != string(v) {
				t.Fatalf("%q: member %q = %q, want %q", b, k, g, v)
			}
			if string(m[k]) != string(v) {
				t.Fatalf("%q: Object member %q = %q, want %q", b, k, m[k], v)
			}
		}
	})
}

// TestSplitRepeatedNames: a repeated name keeps its last value, in a small object (every pair
// compared) and in a large one (indexed: the cost stays linear for a body of many members).
func TestSplitRepeatedNames(t *testing.T) {
	for _, n := range []int{3, 16, 17, 5000} {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,"dup":%d,`, i%(n/2+1), i, i)
		}
		b.WriteString(`"last":"\u0064"}`)
		got, err := Split([]byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal([]byte(b.String()), &want); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("n=%d: %d members, want %d", n, len(got), len(want))
		}
		for k, v := range want {
			if g, _ := got.Get(k); string(g) != string(v) {
				t.Fatalf("n=%d: %s = %s, want %s", n, k, g, v)
			}
		}
	}
}

// TextBytes returns what Text returns, nil when ok is false, and a view of the input (no copy)
// for a string without escapes and for a number.
func TestTextBytes(t *testing.T) {
	for _, raw := range []string{`"plain"`, `"\"q\" \u00e9 \ud83d\ude00"`, `-12.5e3`, `12345678901234567890123`, `true`, `"bad \x"`, `{}`, ``} {
		want, wok := Text(json.RawMessage(raw))
		got, ok := TextBytes(json.RawMessage(raw))
		if ok != wok || (ok && string(got) != want) || (!ok && got != nil) {
			t.Errorf("TextBytes(%s) = %q, %v; Text = %q, %v", raw, got, ok, want, wok)
		}
	}
	for _, raw := range []string{` "plain" `, `-12.5e3`} {
		in := []byte(raw)
		got, _ := TextBytes(in)
		if len(got) == 0 || &got[0] != &in[strings.IndexAny(raw, "p-")] {
			t.Errorf("TextBytes(%s) copied the text", raw)
		}
	}
}
