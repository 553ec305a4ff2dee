// Package eleme verifies and keys Eleme (饿了么) push messages (docs/specs/platforms.md §1.2).
//
// The signature is the upper-case hex MD5 of every top-level "key=value" pair of the body except
// signature, sorted and joined without separator, followed by the app's secret. A value is the
// raw text: a string's content (message stays the JSON text exactly as sent), a number's literal
// digits (so ids above 2^53 stay exact). The app is chosen by appId; several secrets per app may
// be configured (rotation). The comparison ignores case and runs in constant time.
package eleme

import (
	"bytes"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/orderpipe/pipeline/ingress/internal/callback"
	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/schemas"
)

// Push is a parsed push envelope: what verification and keying need.
type Push struct {
	AppID     string
	Signature string
	// Base is the string that is hashed before the secret is appended.
	Base string
	// Message is the text of the message field (JSON inside a string).
	Message string
	Type    string
	ShopID  string
}

// ParsePush decodes the envelope. A body that is not a JSON object, or lacks appId, type or a
// string message, is malformed. A missing signature is not malformed: Verify reports it.
func ParsePush(body []byte) (Push, error) {
	top, err := callback.Object(body)
	if err != nil {
		return Push{}, callback.Malformed("body: %v", err)
	}
	var p Push
	var ok bool
	if p.AppID, ok = callback.Text(top["appId"]); !ok || p.AppID == "" {
		return Push{}, callback.Malformed("appId is missing or not a string or number")
	}
	if p.Type, ok = callback.Text(top["type"]); !ok || p.Type == "" {
		return Push{}, callback.Malformed("type is missing or not a string or number")
	}
	if raw, present := top["message"]; !present || len(raw) == 0 || raw[0] != '"' {
		return Push{}, callback.Malformed("message is missing or not a string")
	}
	if p.Message, ok = callback.Text(top["message"]); !ok {
		return Push{}, callback.Malformed("message is not a valid JSON string")
	}
	if raw, present := top["shopId"]; present {
		if p.ShopID, ok = callback.Text(raw); !ok {
			return Push{}, callback.Malformed("shopId is not a string or number")
		}
	}
	if raw, present := top["signature"]; present {
		p.Signature, _ = callback.Text(raw)
	}
	p.Base = signingBase(top, p.Message)
	return p, nil
}

// signingBase is every "key=value" pair of top but signature, sorted as strings and joined
// without separator. The pairs are written into one buffer and sorted as spans of it: one
// allocation for the pairs and one for the result, whatever the number of fields. message is
// the message field's text, already unescaped.
func signingBase(top map[string]json.RawMessage, message string) string {
	n := 0
	for k, raw := range top {
		n += len(k) + 1 + len(raw)
	}
	buf := make([]byte, 0, n) // a value's text is never longer than its JSON
	type span struct{ from, to int }
	spans := make([]span, 0, len(top))
	for k, raw := range top {
		if k == "signature" {
			continue
		}
		from := len(buf)
		buf = append(buf, k...)
		buf = append(buf, '=')
		if k == "message" {
			buf = append(buf, message...) // unescaped once: the message is most of the body
		} else {
			buf = appendValueText(buf, raw)
		}
		spans = append(spans, span{from, len(buf)})
	}
	slices.SortFunc(spans, func(a, b span) int { return bytes.Compare(buf[a.from:a.to], buf[b.from:b.to]) })
	var out strings.Builder
	out.Grow(len(buf))
	for _, sp := range spans {
		out.Write(buf[sp.from:sp.to])
	}
	return out.String()
}

// appendValueText appends a top-level value as it is signed: a string's content unquoted, a
// number's literal digits. Other kinds (no known field has them) are used as their JSON text.
func appendValueText(buf []byte, raw json.RawMessage) []byte {
	if callback.PlainString(raw) {
		return append(buf, raw[1:len(raw)-1]...)
	}
	if callback.IsNumber(raw) {
		return append(buf, raw...)
	}
	if s, ok := callback.Text(raw); ok {
		return append(buf, s...)
	}
	return append(buf, bytes.TrimSpace(raw)...)
}

// Sign returns the signature over base (see Push.Base) with secret, upper-case hex.
func Sign(base, secret string) string {
	sum := md5.Sum([]byte(base + secret))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// SignBody returns the signature of an envelope body (its signature field, if any, ignored).
func SignBody(body []byte, secret string) (string, error) {
	p, err := ParsePush(body)
	if err != nil {
		return "", err
	}
	return Sign(p.Base, secret), nil
}

// Verifier checks push signatures against per-app secrets.
type Verifier struct {
	apps map[string][][]byte
}

// NewVerifier returns a Verifier for apps: appId → its secrets (any one may match).
func NewVerifier(apps map[string][]string) *Verifier {
	v := &Verifier{apps: map[string][][]byte{}}
	for app, secrets := range apps {
		for _, s := range secrets {
			v.apps[app] = append(v.apps[app], []byte(s))
		}
	}
	return v
}

// Configured reports whether at least one app is set.
func (v *Verifier) Configured() bool { return v != nil && len(v.apps) > 0 }

// Verify checks p's signature. An unknown appId and a missing signature are signature failures.
func (v *Verifier) Verify(p Push) error {
	if p.Signature == "" {
		return &callback.SignatureError{Reason: "missing", Detail: "missing signature"}
	}
	secrets, ok := v.apps[p.AppID]
	if !ok {
		return &callback.SignatureError{Reason: "unknown_app", Detail: "unknown appId"}
	}
	var want [md5.Size]byte // the hex, either case, decoded: compared as bytes
	if len(p.Signature) != md5.Size*2 {
		return &callback.SignatureError{Reason: "mismatch", Detail: "signature does not match"}
	}
	if _, err := hex.Decode(want[:], []byte(p.Signature)); err != nil {
		return &callback.SignatureError{Reason: "mismatch", Detail: "signature does not match"}
	}
	match := 0
	var sum [md5.Size]byte
	for _, s := range secrets {
		h := md5.New()
		_, _ = io.WriteString(h, p.Base)
		h.Write(s)
		match |= subtle.ConstantTimeCompare(h.Sum(sum[:0]), want[:])
	}
	if match != 1 {
		return &callback.SignatureError{Reason: "mismatch", Detail: "signature does not match"}
	}
	return nil
}

// Key returns the record key and order id of a verified push. The order sits inside the message
// JSON, as a string or a number (kept as its digits): status change, cancel/refund and delivery
// messages name it orderId; the full order of types 10 and 217 (OOrder in the Eleme SDKs) names
// it id, which counts only in a type the mapping knows as an order type (a shop message's id is
// the shop's). Messages without an order (shop status 91/93, authorisation 100, …) are keyed
// "eleme:shop:<shopId>", or "eleme:app:<appId>" when the push names no shop either; their
// OrderID is "". An order type that names no order is keyed the same way and the normalizer
// dead-letters it.
func Key(p Push) (callback.Parsed, error) {
	out := callback.Parsed{Type: p.Type}
	if msg, err := callback.Object([]byte(p.Message)); err == nil {
		fields := []string{"orderId"}
		if typ, err := strconv.Atoi(p.Type); err == nil {
			if _, known := schemas.ElemeType(typ); known {
				fields = append(fields, "id")
			}
		}
		for _, f := range fields {
			raw, ok := msg[f]
			if !ok || string(raw) == "null" {
				continue
			}
			id, ok := callback.Text(raw)
			if !ok {
				return out, callback.Malformed("message.%s is not a string or number", f)
			}
			if id != "" {
				out.OrderID = id
				out.Key = schemas.Key(schemas.PlatformEleme, id)
				return out, nil
			}
		}
	}
	if p.ShopID != "" {
		out.Key = schemas.Key(schemas.PlatformEleme, "shop:"+p.ShopID)
		return out, nil
	}
	out.Key = schemas.Key(schemas.PlatformEleme, "app:"+p.AppID)
	return out, nil
}

// LoadSecrets parses ELEME_SECRETS, "appId=secret,appId=secret2,…" (also ELEME_SECRETS_FILE):
// appId → its secrets, the first the current one. The ingress verifies pushes with any of them;
// the compensation poller signs its API calls with the first. Errors name the item's position,
// never its value.
func LoadSecrets(l *envconfig.Loader) map[string][]string {
	out := map[string][]string{}
	for i, item := range l.SecretList("ELEME_SECRETS") {
		app, secret, ok := strings.Cut(item, "=")
		app, secret = strings.TrimSpace(app), strings.TrimSpace(secret)
		if !ok || app == "" || secret == "" {
			l.Fail("ELEME_SECRETS", "item %d is not appId=secret", i+1)
			continue
		}
		out[app] = append(out[app], secret)
	}
	return out
}
