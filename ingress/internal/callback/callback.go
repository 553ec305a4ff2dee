// Package callback holds what both platforms' parsers share: the parsed callback a handler keys
// and writes, the error kinds that decide the reply, and exact JSON value handling (numbers are
// kept as their literal text, so ids above 2^53 never pass through a float64).
package callback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Parsed is what the ingress needs from a verified callback: the Kafka key and the order id.
type Parsed struct {
	// Key is the Kafka record key, "platform:order_id" or a documented fallback
	// ("eleme:shop:<shopId>", "eleme:app:<appId>", "dianwoda:msg:<msg_id>").
	Key string
	// OrderID is the exact order id, or "" for messages that are not about one order.
	OrderID string
	// Type is the platform's message type as text (Eleme "12", Dianwoda "dianwoda.order.status-update").
	Type string
}

// Error kinds. A handler maps them to replies: ErrMalformed → 400, ErrSignature → 401.
var (
	ErrMalformed = errors.New("malformed callback")
	ErrSignature = errors.New("invalid signature")
)

// Malformed returns an ErrMalformed with a reason safe to show to the caller (it never holds
// request values).
func Malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// SignatureError returns an ErrSignature with a reason safe to show and log; Reason is bounded
// ("missing", "mismatch", "unknown_app", "missing_parameter") for metrics.
type SignatureError struct {
	Reason string
	Detail string
}

func (e *SignatureError) Error() string { return "invalid signature: " + e.Detail }

// Is makes errors.Is(err, ErrSignature) true.
func (e *SignatureError) Is(target error) bool { return target == ErrSignature }

// Text returns the text of a scalar JSON value as the platforms sign and key it: a string's
// unescaped content, or a number's literal digits (exact, whatever its size). ok is false for
// anything else (object, array, bool, null) and for invalid JSON.
func Text(raw json.RawMessage) (s string, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	case c == '-' || (c >= '0' && c <= '9'):
		var n json.Number
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&n); err != nil {
			return "", false
		}
		return string(raw), true
	}
	return "", false
}

// Object decodes b as one JSON object into its raw members. Trailing data is malformed.
func Object(b []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&m); err != nil {
		return nil, errors.New("not a JSON object")
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}
