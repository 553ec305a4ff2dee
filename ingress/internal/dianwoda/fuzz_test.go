package dianwoda

import (
	"errors"
	"net/url"
	"testing"

	"github.com/orderpipe/pipeline/ingress/internal/callback"
)

// FuzzParse: any body either parses to a key starting "dianwoda:" or fails as malformed; it never
// panics. The seed corpus runs as an ordinary test.
func FuzzParse(f *testing.F) {
	for _, tt := range parseCases {
		f.Add(tt.typ, []byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		p, err := Parse(url.Values{"type": {typ}}, body)
		if err != nil {
			if !errors.Is(err, callback.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if len(p.Key) <= len("dianwoda:") || p.Key[:9] != "dianwoda:" {
			t.Fatalf("key %q", p.Key)
		}
	})
}

// FuzzVerify: a signature made with the secret always verifies; any change to the body does not.
func FuzzVerify(f *testing.F) {
	f.Add("123456", "1545188246307", TypeStatusUpdate, []byte(exampleBody), exampleSecret, byte(0))
	f.Add("", "1", "t", []byte{}, "s", byte(1))
	f.Add("n", "t", "x", []byte(`{"a":"b"}`), "", byte(255))
	f.Fuzz(func(t *testing.T, nonce, ts, typ string, body []byte, secret string, flip byte) {
		v := NewVerifier([]string{secret})
		q := url.Values{"nonce": {nonce}, "timestamp": {ts}, "type": {typ}, "sign": {Sign(nonce, ts, typ, body, secret)}}
		err := v.Verify(q, body)
		if nonce == "" || ts == "" || typ == "" {
			if !errors.Is(err, callback.ErrSignature) {
				t.Fatalf("missing parameter accepted: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
		if len(body) == 0 {
			return
		}
		tampered := append([]byte(nil), body...)
		tampered[int(flip)%len(tampered)] ^= 0x01
		if err := v.Verify(q, tampered); !errors.Is(err, callback.ErrSignature) {
			t.Fatalf("tampered body accepted: %v", err)
		}
	})
}
