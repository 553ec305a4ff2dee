package eleme

import (
	"encoding/json"
	"errors"
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
		env["signature"] = Sign(p.Base, secret)
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
