// Package normalize turns one callbacks.raw.v1 record value into unified status events. It is
// pure: bytes in, events or a classified error out, no I/O, no clock. The same bytes always give
// the same events with the same event_id, and so does the same platform transition sent again
// under a new msg_id / requestId (see EventID).
//
// Errors are *Error with a bounded Reason (schemas.DLQReason*): the caller dead-letters the
// record with it. Unknown platform codes are never an error: they become status "unknown" (or
// map by order_status / state where that is known) and are carried verbatim.
package normalize

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"strconv"
	"strings"
	"time"

	"github.com/orderpipe/pipeline/schemas"
	"github.com/orderpipe/pipeline/schemas/jsonenc"
)

// SkipNotOrderEvent is Result.Skip for a valid envelope that carries no order event: an Eleme
// shop or authorization message (keyed eleme:shop:<shopId>) or a Dianwoda message of another
// type (keyed dianwoda:msg:<msg_id>). The ingress writes them with an empty order_id.
const SkipNotOrderEvent = "not_order_event"

// Error is a record that cannot be normalized: poison, for the dead-letter topic.
type Error struct {
	// Reason is a bounded code: schemas.DLQReasonDecode, DLQReasonValidate, ...
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func decodeErr(format string, args ...any) error {
	return &Error{Reason: schemas.DLQReasonDecode, Err: fmt.Errorf(format, args...)}
}

func validateErr(format string, args ...any) error {
	return &Error{Reason: schemas.DLQReasonValidate, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the DLQ reason of err: its *Error reason, or "decode" for anything else.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return schemas.DLQReasonDecode
}

// Result is what one raw record becomes.
type Result struct {
	// Envelope is the decoded envelope. Its Headers hold only a traceparent (the one header the
	// normalizer uses), and its Query only for Dianwoda (whose message type it carries): the
	// other maps are not decoded, which saves most of the allocations per record.
	Envelope schemas.RawEnvelope
	// Event is the record's unified event, unless Skip is set.
	Event schemas.StatusEvent
	// Skip is non-empty (SkipNotOrderEvent) when the record is valid but carries no order event.
	Skip string
}

// Record decodes a callbacks.raw.v1 value and maps it.
func Record(value []byte) (Result, error) {
	var r Result
	var le lazyEnvelope
	if err := decodeJSON(value, &le); err != nil {
		return r, decodeErr("raw envelope: %v", err)
	}
	r.Envelope = schemas.RawEnvelope{Version: le.Version, IngressID: le.IngressID, Platform: le.Platform, OrderID: le.OrderID,
		ReceivedAt: le.ReceivedAt, Body: le.Body}
	env := &r.Envelope
	if len(le.Headers) > 0 && containsFold(le.Headers, "traceparent") {
		var h map[string]string
		if err := decodeJSON(le.Headers, &h); err != nil {
			return r, decodeErr("raw envelope: headers: %v", err)
		}
		for k, v := range h {
			if strings.EqualFold(k, schemas.HeaderTraceparent) {
				env.Headers = map[string]string{schemas.HeaderTraceparent: v}
			}
		}
	}
	if len(le.Query) > 0 && le.Platform == schemas.PlatformDianwoda {
		// Into a local: a pointer into r handed to the decoder would move all of r to the heap.
		var q map[string][]string
		if err := decodeJSON(le.Query, &q); err != nil {
			return r, decodeErr("raw envelope: query: %v", err)
		}
		env.Query = q
	}
	if env.Version != schemas.RawEnvelopeVersion {
		return r, &Error{Reason: schemas.DLQReasonUnsupportedVersion, Err: fmt.Errorf("raw envelope version %d, this reader knows %d", env.Version, schemas.RawEnvelopeVersion)}
	}
	if env.ReceivedAt.IsZero() {
		return r, validateErr("raw envelope: received_at missing")
	}
	if env.OrderID == "" && env.Platform == schemas.PlatformDianwoda {
		r.Skip = SkipNotOrderEvent
		return r, nil
	}
	var (
		ev  schemas.StatusEvent
		err error
	)
	switch env.Platform {
	case schemas.PlatformDianwoda:
		ev, err = Dianwoda(env)
	case schemas.PlatformEleme:
		// An Eleme record with an empty order_id is a shop or app message, or an order message
		// the ingress could not key by its order: Eleme decides by the push type.
		ev, err = Eleme(env)
	default:
		return r, &Error{Reason: schemas.DLQReasonUnsupportedPlatform, Err: fmt.Errorf("platform %q", env.Platform)}
	}
	if errors.Is(err, errNotOrderEvent) {
		r.Skip = SkipNotOrderEvent
		return r, nil
	}
	if err != nil {
		return r, err
	}
	if err := plausible(ev.OccurredAt.Time, env.ReceivedAt.Time); err != nil {
		return r, err
	}
	r.Event = ev
	return r, nil
}

// errNotOrderEvent is a valid record that carries no order event (Record turns it into Skip).
var errNotOrderEvent = errors.New("not an order event")

// The window around received_at in which a platform's time of a transition is believed.
// Platforms retry and the compensation pulls fetch old pushes, so a transition may arrive days
// late; it never happens in the future beyond clock skew. A time outside the window is a value
// in the wrong unit (microseconds or seconds in a millisecond field): it is dead-lettered
// (DLQReasonImplausibleTime), because as the order's guard it would make every later event of
// the order stale (centuries ahead) and as an event it claims a time nobody can trust. Once
// the mapper knows the unit, the replay tool re-drives the dead letters.
const (
	MaxAhead  = 15 * time.Minute
	MaxBehind = 30 * 24 * time.Hour
)

func plausible(occurred, received time.Time) error {
	if occurred.After(received.Add(MaxAhead)) || occurred.Before(received.Add(-MaxBehind)) {
		return &Error{Reason: schemas.DLQReasonImplausibleTime, Err: fmt.Errorf("occurred_at %s is outside [received_at - %s, received_at + %s] of received_at %s",
			occurred.UTC().Format(schemas.TimeLayout), MaxBehind, MaxAhead, received.UTC().Format(schemas.TimeLayout))}
	}
	return nil
}

// lazyEnvelope is schemas.RawEnvelope with the maps left undecoded.
type lazyEnvelope struct {
	Version    int               `json:"version"`
	IngressID  string            `json:"ingress_id"`
	Platform   string            `json:"platform"`
	OrderID    string            `json:"order_id"`
	ReceivedAt schemas.Timestamp `json:"received_at"`
	Query      json.RawMessage   `json:"query"`
	Headers    json.RawMessage   `json:"headers"`
	Body       []byte            `json:"body"`
}

// containsFold reports whether s (lower case) occurs in b, ignoring ASCII case.
func containsFold(b []byte, s string) bool {
	n := len(s)
outer:
	for i := 0; i+n <= len(b); i++ {
		for j := 0; j < n; j++ {
			c := b[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != s[j] {
				continue outer
			}
		}
		return true
	}
	return false
}

// eventIDNamespace is the UUIDv5 namespace of event ids (a fixed random UUID; never change it,
// or every id changes).
var eventIDNamespace = [16]byte{0x6f, 0x1c, 0x2a, 0x4e, 0x8b, 0x0d, 0x4f, 0x43, 0x9a, 0x57, 0x3c, 0x1e, 0x2d, 0x9b, 0x7a, 0x10}

// EventID returns the deterministic event id of a transition: a UUIDv5 (RFC 9562) in the
// namespace above, named by the JSON array
//
//	["v1", platform, kind, order_id, type, platform_status, reason_code, reason_sub_code, occurred_at_ms]
//
// type is Eleme's push type ("" for Dianwoda, whose message type is always the status update).
// The platform's message id (msg_id, requestId), the delivery attempt, the rider and the
// reception time are NOT part of it: a retry and a re-send of the same transition under a new
// id get the same event_id, and so collapse in dedup.
func EventID(platform, kind, orderID, typ, platformStatus, code, subCode string, occurredMS int64) string {
	// The name is encoded byte for byte as encoding/json's Marshal of the []string encodes it (a
	// different escaping of one character would change every id that holds it; jsonenc is held
	// to encoding/json by FuzzEventIDNameIsMarshal), without its reflection.
	var buf [256]byte
	name := append(buf[:0], `["v1"`...)
	for _, s := range [...]string{platform, kind, orderID, typ, platformStatus, code, subCode} {
		name = append(name, ',')
		name = jsonenc.AppendString(name, s)
	}
	name = append(name, ',', '"')
	name = strconv.AppendInt(name, occurredMS, 10)
	name = append(name, '"', ']')
	h := sha1.New()
	h.Write(eventIDNamespace[:])
	h.Write(name)
	var sum [sha1.Size]byte
	var u [16]byte
	copy(u[:], h.Sum(sum[:0]))
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 9562 variant
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:])
	return string(out[:])
}

// text is a JSON scalar kept as exact text: a string's value, a number's literal (big ids stay
// exact), "" for null or absence. Objects, arrays and booleans are refused.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*t = ""
	case b[0] == '"' && len(b) >= 2 && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0:
		// Fast path, no escapes: encoding/json has already checked that b is a valid string.
		*t = text(b[1 : len(b)-1])
	case b[0] == '"':
		var s string
		if err := decodeJSON(b, &s); err != nil {
			return err
		}
		*t = text(s)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*t = text(b)
	default:
		return fmt.Errorf("want a string or a number, got %.20s", b)
	}
	return nil
}

// int64Of parses a text holding an integer (or a JSON number with a fraction, truncated).
func int64Of(t text) (int64, bool) {
	if t == "" {
		return 0, false
	}
	if v, err := strconv.ParseInt(string(t), 10, 64); err == nil {
		return v, true
	}
	f, err := strconv.ParseFloat(string(t), 64)
	if err != nil || f != f || f > 9e18 || f < -9e18 {
		return 0, false
	}
	return int64(f), true
}

// decodeJSON decodes one JSON value (nothing may follow it) into v. Every scalar the mappers
// read is a text, which keeps numbers as their literal, so big ids stay exact; nothing is ever
// decoded into a float64.
//
// Decoding is github.com/goccy/go-json, a drop-in for encoding/json (same struct tags, same
// case-insensitive field matching, RawMessage, base64 []byte, Unmarshaler): encoding/json, which
// scans every value twice, was half of the normalizer's CPU (docs/performance.md).
func decodeJSON(b []byte, v any) error {
	return unmarshal(b, v)
}

// unmarshal is the decoder; TestDecoderAgreesWithStdlib swaps in encoding/json's to hold the two
// to the same results.
var unmarshal = json.Unmarshal
