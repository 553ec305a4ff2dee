package elemeapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/orderpipe/pipeline/ingress/internal/callback"
)

// Message is one failed push as getPushFailMsg returned it: its members as raw JSON (numbers
// keep their exact digits) and the id confirmPullMsg takes.
type Message struct {
	// ID is the id's JSON value as received (a string or a number), sent back verbatim.
	ID json.RawMessage
	// IDText is the id as text, for logs.
	IDText string
	// Fields are the message's members (requestId, type, message, shopId, userId, timestamp,
	// orderId, …), exactly as received.
	Fields map[string]json.RawMessage
}

// ErrBadResult is a result this package cannot read; the poller counts it and retries later.
var ErrBadResult = errors.New("unreadable result")

// ParseMessages reads a getPushFailMsg result (open.go 3, 4). null or an empty list is no
// message. An item without an id, or without a string message, makes the whole result
// unreadable: nothing of it is written or confirmed, so nothing is lost.
func ParseMessages(result json.RawMessage) ([]Message, error) {
	result = bytes.TrimSpace(result)
	if len(result) == 0 || string(result) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	switch result[0] {
	case '[':
		if err := json.Unmarshal(result, &items); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadResult, err)
		}
	case '{':
		obj, err := callback.Object(result)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadResult, err)
		}
		found := false
		for _, f := range ListFields {
			raw, ok := obj[f]
			if !ok || string(bytes.TrimSpace(raw)) == "null" {
				continue
			}
			if err := json.Unmarshal(raw, &items); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrBadResult, f, err)
			}
			found = true
			break
		}
		if !found {
			// An object without a list: a result this reading does not know. Failing loudly
			// beats reading "no messages" and never pulling them.
			return nil, fmt.Errorf("%w: object result without any of %v", ErrBadResult, ListFields)
		}
	default:
		return nil, fmt.Errorf("%w: neither an array nor an object", ErrBadResult)
	}
	out := make([]Message, 0, len(items))
	for i, it := range items {
		m, err := parseMessage(it)
		if err != nil {
			return nil, fmt.Errorf("%w: item %d: %v", ErrBadResult, i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func parseMessage(raw json.RawMessage) (Message, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' { // getNonReachedMessages' form: a string holding the object
		s, ok := callback.Text(raw)
		if !ok {
			return Message{}, errors.New("not a JSON string")
		}
		raw = []byte(s)
	}
	fields, err := callback.Object(raw)
	if err != nil {
		return Message{}, fmt.Errorf("not an object: %v", err)
	}
	m := Message{Fields: fields}
	for _, f := range append(append([]string{}, IDFields...), fieldRequestID) {
		if v, ok := fields[f]; ok {
			if t, ok := callback.Text(v); ok && t != "" {
				m.ID, m.IDText = v, t
				break
			}
		}
	}
	if m.ID == nil {
		return Message{}, fmt.Errorf("no id (%v or %s)", IDFields, fieldRequestID)
	}
	if msg, ok := fields[fieldMessageBody]; !ok {
		return Message{}, errors.New("no message")
	} else if msg = bytes.TrimSpace(msg); len(msg) > 0 && msg[0] == '{' {
		// An object instead of the push's string: carry it as the push would, a JSON string.
		var c bytes.Buffer
		if err := json.Compact(&c, msg); err != nil {
			return Message{}, err
		}
		s, _ := EncodeValue(c.String())
		m.Fields[fieldMessageBody] = s
	} else if _, ok := callback.Text(msg); !ok || msg[0] != '"' {
		return Message{}, errors.New("message is not a string")
	}
	return m, nil
}

// ErrNotConfirmed is a confirm the platform answered without an error but did not accept.
var ErrNotConfirmed = errors.New("confirm not accepted")

// ParseConfirm reads a confirmPullMsg result (open.go 6): true, null, or an object whose
// "success" is not false is a confirm; false is not.
func ParseConfirm(result json.RawMessage) error {
	result = bytes.TrimSpace(result)
	switch {
	case len(result) == 0, string(result) == "null", string(result) == "true":
		return nil
	case string(result) == "false":
		return ErrNotConfirmed
	case result[0] == '{':
		var o struct {
			Success *bool `json:"success"`
		}
		if err := json.Unmarshal(result, &o); err != nil {
			return fmt.Errorf("%w: %v", ErrBadResult, err)
		}
		if o.Success != nil && !*o.Success {
			return ErrNotConfirmed
		}
		return nil
	}
	return fmt.Errorf("%w: confirm result %.40s", ErrBadResult, result)
}
