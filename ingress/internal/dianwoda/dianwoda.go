// Package dianwoda verifies and keys Dianwoda (点我达) callbacks (docs/specs/platforms.md §2.2).
//
// The signature is the lower-case hex SHA-1 of
//
//	nonce=<nonce>&timestamp=<timestamp>&type=<type>&body=<raw request body>&secret=<secret>
//
// with the three query parameters in ASCII order, the body exactly as received (never
// re-serialised) and any configured secret (rotation). The comparison ignores case and runs in
// constant time. Other query parameters are carried in the envelope but are not signed.
package dianwoda

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"net/url"
	"strings"

	"github.com/orderpipe/pipeline/ingress/internal/callback"
	"github.com/orderpipe/pipeline/schemas"
)

// TypeStatusUpdate is the message type of an order status change.
const TypeStatusUpdate = "dianwoda.order.status-update"

// SignedParams are the query parameters covered by the signature, in signing order.
var SignedParams = []string{"nonce", "timestamp", "type"}

// Verifier checks signatures against a set of secrets.
type Verifier struct {
	secrets [][]byte
}

// NewVerifier returns a Verifier accepting a signature made with any of secrets.
func NewVerifier(secrets []string) *Verifier {
	v := &Verifier{}
	for _, s := range secrets {
		v.secrets = append(v.secrets, []byte(s))
	}
	return v
}

// Configured reports whether at least one secret is set.
func (v *Verifier) Configured() bool { return v != nil && len(v.secrets) > 0 }

// Sign returns the signature of a callback (lower-case hex), as Dianwoda computes it.
func Sign(nonce, timestamp, typ string, body []byte, secret string) string {
	h := sha1.New()
	writeBase(h, nonce, timestamp, typ, body)
	h.Write([]byte(secret))
	return hex.EncodeToString(h.Sum(nil))
}

type writer interface{ Write([]byte) (int, error) }

func writeBase(h writer, nonce, timestamp, typ string, body []byte) {
	h.Write([]byte("nonce="))
	h.Write([]byte(nonce))
	h.Write([]byte("&timestamp="))
	h.Write([]byte(timestamp))
	h.Write([]byte("&type="))
	h.Write([]byte(typ))
	h.Write([]byte("&body="))
	h.Write(body)
	h.Write([]byte("&secret="))
}

// Verify checks the query's sign against the body. A missing sign or a missing signed parameter
// is a signature failure (the request cannot be authenticated), never a malformed request.
func (v *Verifier) Verify(q url.Values, body []byte) error {
	got := q.Get("sign")
	if got == "" {
		return &callback.SignatureError{Reason: "missing", Detail: "missing sign"}
	}
	vals := make([]string, len(SignedParams))
	for i, k := range SignedParams {
		if vals[i] = q.Get(k); vals[i] == "" {
			return &callback.SignatureError{Reason: "missing_parameter", Detail: "missing signed parameter " + k}
		}
	}
	want := []byte(strings.ToLower(got))
	if len(want) != sha1.Size*2 {
		return &callback.SignatureError{Reason: "mismatch", Detail: "signature does not match"}
	}
	// The prefix is shared by every secret: hash it once and clone the state per secret.
	base := sha1.New()
	writeBase(base, vals[0], vals[1], vals[2], body)
	ok := 0
	buf := make([]byte, sha1.Size*2)
	for _, s := range v.secrets {
		h, err := base.(hash.Cloner).Clone()
		if err != nil {
			return err
		}
		h.Write(s)
		hex.Encode(buf, h.Sum(nil))
		ok |= subtle.ConstantTimeCompare(buf, want)
	}
	if ok != 1 {
		return &callback.SignatureError{Reason: "mismatch", Detail: "signature does not match"}
	}
	return nil
}

// Parse checks that body is a Dianwoda callback and returns its key. A status update must name
// content.order_original_id (string, or a number kept as its digits); any other message type is
// keyed by content.order_original_id when present, else by "dianwoda:msg:<msg_id>".
func Parse(q url.Values, body []byte) (callback.Parsed, error) {
	top, err := callback.Split(body)
	if err != nil {
		return callback.Parsed{}, callback.Malformed("body: %v", err)
	}
	typ := q.Get("type")
	p := callback.Parsed{Type: typ}
	var orderID string
	if raw, ok := top.Get("content"); ok {
		content, err := callback.SplitMember(raw)
		if err != nil {
			return p, callback.Malformed("content: %v", err)
		}
		if raw, ok := content.Get("order_original_id"); ok {
			s, ok := callback.Text(raw)
			if !ok {
				return p, callback.Malformed("content.order_original_id is not a string or number")
			}
			orderID = s
		}
	}
	if typ == TypeStatusUpdate || orderID != "" {
		if orderID == "" {
			return p, callback.Malformed("content.order_original_id is missing")
		}
		p.OrderID = orderID
		p.Key = schemas.Key(schemas.PlatformDianwoda, orderID)
		return p, nil
	}
	msgID, ok := top.Text("msg_id")
	if !ok || msgID == "" {
		return p, callback.Malformed("msg_id is missing")
	}
	p.Key = schemas.Key(schemas.PlatformDianwoda, "msg:"+msgID)
	return p, nil
}
