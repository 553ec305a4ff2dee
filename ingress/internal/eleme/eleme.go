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
	"cmp"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
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
	// Message is the text of the message field (JSON inside a string), unescaped (a view of the
	// body when it has no escapes).
	Message []byte
	Type    string
	ShopID  string

	// The signing base (AppendBase) as its "name=value" pairs, sorted, views of the body: kept
	// in the Push, not joined on the heap, so that parsing and verifying a push of up to
	// len(pairs) members allocates no base. A push of more members keeps them in more.
	pairs  [16]pair
	npairs int
	more   []pair
}

// AppendBase appends the text that is hashed before the secret is appended: every top-level
// "name=value" but signature, sorted as strings, joined without separator.
func (p *Push) AppendBase(dst []byte) []byte {
	for _, pr := range p.basePairs() {
		dst = append(dst, pr.name...)
		dst = append(dst, '=')
		dst = append(dst, pr.text...)
	}
	return dst
}

func (p *Push) basePairs() []pair {
	if p.more != nil {
		return p.more
	}
	return p.pairs[:p.npairs]
}

// ParsePush decodes the envelope. A body that is not a JSON object, or lacks appId, type or a
// string message, is malformed. A missing signature is not malformed: Verify reports it.
func ParsePush(body []byte) (Push, error) {
	var buf [8]callback.Field // a push has 7 members: split without allocating
	top, err := callback.SplitAppend(buf[:0], body)
	if err != nil {
		return Push{}, callback.Malformed("body: %v", err)
	}
	var p Push
	var ok bool
	if p.AppID, ok = top.Text("appId"); !ok || p.AppID == "" {
		return Push{}, callback.Malformed("appId is missing or not a string or number")
	}
	if p.Type, ok = top.Text("type"); !ok || p.Type == "" {
		return Push{}, callback.Malformed("type is missing or not a string or number")
	}
	raw, present := top.Get("message")
	if !present || len(raw) == 0 || raw[0] != '"' {
		return Push{}, callback.Malformed("message is missing or not a string")
	}
	if p.Message, ok = callback.TextBytes(raw); !ok {
		return Push{}, callback.Malformed("message is not a valid JSON string")
	}
	if raw, present := top.Get("shopId"); present {
		if p.ShopID, ok = callback.Text(raw); !ok {
			return Push{}, callback.Malformed("shopId is not a string or number")
		}
	}
	p.Signature, _ = top.Text("signature")
	p.signingPairs(top)
	return p, nil
}

// pair is one "name=value" of the signing base, as the two parts it is made of.
type pair struct{ name, text []byte }

func (p pair) len() int { return len(p.name) + 1 + len(p.text) }

// at is the byte at i of name + "=" + text.
func (p pair) at(i int) byte {
	switch {
	case i < len(p.name):
		return p.name[i]
	case i == len(p.name):
		return '='
	}
	return p.text[i-len(p.name)-1]
}

// comparePairs orders pairs as their "name=value" strings, without building them.
func comparePairs(a, b pair) int {
	n := min(a.len(), b.len())
	for i := range n {
		if ca, cb := a.at(i), b.at(i); ca != cb {
			return cmp.Compare(ca, cb)
		}
	}
	return cmp.Compare(a.len(), b.len())
}

// signingPairs puts every "name=value" of top but signature in p's pairs, sorted as strings, as
// views of the body (callback.TextBytes copies only a string with escapes, which only message
// has in practice), or in p.more when there are more than len(p.pairs). p.Message is the
// message field's text, already unescaped. (p.more is never a slice of p.pairs: a Push that
// could point into itself would be moved to the heap.)
func (p *Push) signingPairs(top callback.Fields) {
	n := 0
	for _, f := range top {
		if string(f.Name) != "signature" {
			n++
		}
	}
	var dst []pair
	if n > len(p.pairs) {
		p.more = make([]pair, n)
		dst = p.more
	} else {
		p.npairs = n
		dst = p.pairs[:n]
	}
	i := 0
	for _, f := range top {
		if pr, ok := signingPair(f, p.Message); ok {
			dst[i] = pr
			i++
		}
	}
	slices.SortFunc(dst, comparePairs)
}

// signingPair is f's pair of the signing base; ok is false for the signature.
func signingPair(f callback.Field, message []byte) (pair, bool) {
	name := string(f.Name)
	if name == "signature" {
		return pair{}, false
	}
	text := message // unescaped once: the message is most of the body
	if name != "message" {
		var ok bool
		if text, ok = callback.TextBytes(f.Value); !ok {
			text = bytes.TrimSpace(f.Value) // a kind no known field has: its JSON text
		}
	}
	return pair{f.Name, text}, true
}

// Sign returns the signature over base (see Push.AppendBase) with secret, upper-case hex.
func Sign(base []byte, secret string) string {
	sum := md5.Sum(append(base[:len(base):len(base)], secret...))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// SignBody returns the signature of an envelope body (its signature field, if any, ignored).
func SignBody(body []byte, secret string) (string, error) {
	p, err := ParsePush(body)
	if err != nil {
		return "", err
	}
	return Sign(p.AppendBase(nil), secret), nil
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
	var stack [1024]byte // base and secret hashed from here: a push of usual size allocates nothing
	base := p.AppendBase(stack[:0])
	for _, s := range secrets {
		sum := md5.Sum(append(base, s...)) // each secret in turn after the base, in stack
		match |= subtle.ConstantTimeCompare(sum[:], want[:])
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
	var buf [16]callback.Field // split without allocating: a message has a dozen members or so
	if msg, err := callback.SplitAppend(buf[:0], p.Message); err == nil {
		fields := [2]string{"orderId", "id"} // "id" only for a known order type
		n := 1
		if typ, err := strconv.Atoi(p.Type); err == nil {
			if _, known := schemas.ElemeType(typ); known {
				n = 2
			}
		}
		for _, f := range fields[:n] {
			raw, ok := msg.Get(f)
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
