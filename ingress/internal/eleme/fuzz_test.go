package eleme

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/orderpipe/pipeline/ingress/internal/callback"
)

// FuzzParse: any body either parses and keys to "eleme:…" or fails as malformed; never panics.
func FuzzParse(f *testing.F) {
	for _, tt := range parseCases {
		f.Add([]byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePush(body)
		if err == nil {
			var k callback.Parsed
			if k, err = Key(p); err == nil {
				if !strings.HasPrefix(k.Key, "eleme:") || len(k.Key) == len("eleme:") {
					t.Fatalf("key %q", k.Key)
				}
				return
			}
		}
		if !errors.Is(err, callback.ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", err)
		}
	})
}

// FuzzVerify: a push signed with its app's secret verifies, whatever its values; a changed
// message does not.
func FuzzVerify(f *testing.F) {
	f.Add("62933118", "12", `{"orderId":"100027500485933656","state":"settled"}`, "10135", int64(1482161482053), exampleSecret)
	f.Add("1", "30", "", "", int64(0), "")
	f.Add("x", "y", "\u00e9\"\\", "r", int64(-1), "s=t")
	f.Fuzz(func(t *testing.T, app, typ, msg, req string, ts int64, secret string) {
		env := map[string]any{"appId": app, "type": typ, "message": msg, "requestId": req, "timestamp": ts}
		unsigned, err := json.Marshal(env)
		if err != nil {
			t.Skip()
		}
		p, err := ParsePush(unsigned)
		if err != nil {
			if app == "" || typ == "" {
				return
			}
			t.Fatalf("parse own envelope: %v", err)
		}
		env["signature"] = Sign(p.AppendBase(nil), secret)
		signed, _ := json.Marshal(env)
		if p, err = ParsePush(signed); err != nil {
			t.Fatal(err)
		}
		v := NewVerifier(map[string][]string{p.AppID: {secret}}) // the app as parsed (json.Marshal replaces invalid UTF-8)
		if err := v.Verify(p); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
		env["message"] = msg + "x"
		tampered, _ := json.Marshal(env)
		p, _ = ParsePush(tampered)
		if err := v.Verify(p); !errors.Is(err, callback.ErrSignature) {
			t.Fatalf("tampered message accepted: %v", err)
		}
	})
}

// FuzzSigningBase: the base is the reference construction, every "name=value" but signature
// built as a string (a string's decoded content, a number's digits), sorted as strings and
// joined, whatever the names and values (prefixes of one another, "=" in a name, escapes).
func FuzzSigningBase(f *testing.F) {
	f.Add(`{"appId":1,"type":"12","message":"{\"a\":1}","a":"x","a=":"y","a!":"z","ab":3,"signature":"S"}`)
	f.Add(`{"appId":"1","type":2,"message":"m","t\u00e9":"\u00e9\n","tt":-1.5e2,"t":"","ty":"p"}`)
	f.Add(`{"appId":"1","type":2,"message":"m","x":"1","x":"2"}`)
	// 16 pairs (the Push holds them itself), 17 (they go to the heap), each with the signature.
	for _, n := range []int{13, 14} {
		extra := ""
		for i := range n {
			extra += fmt.Sprintf(`,"k%02d":"%d"`, n-i, i)
		}
		f.Add(`{"signature":"S","appId":"1","type":2,"message":"m"` + extra + `}`)
	}
	f.Fuzz(func(t *testing.T, body string) {
		p, err := ParsePush([]byte(body))
		if err != nil {
			return
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &members); err != nil {
			t.Fatalf("ParsePush accepted what encoding/json refuses: %v", err)
		}
		var pairs []string
		for k, raw := range members {
			if k == "signature" {
				continue
			}
			v := strings.TrimSpace(string(raw))
			var s string
			if json.Unmarshal(raw, &s) == nil {
				v = s
			}
			pairs = append(pairs, k+"="+v)
		}
		slices.Sort(pairs)
		if want := strings.Join(pairs, ""); string(p.AppendBase(nil)) != want {
			t.Fatalf("base\n got %q\nwant %q", p.AppendBase(nil), want)
		}
	})
}
