// Package callback holds what both platforms' parsers share: the parsed callback a handler keys
// and writes, the error kinds that decide the reply, and exact JSON value handling (numbers are
// kept as their literal text, so ids above 2^53 never pass through a float64).
package callback

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tidwall/gjson"
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
	b, ok := TextBytes(raw)
	if !ok {
		return "", false
	}
	return string(b), true
}

// TextBytes is Text as bytes, without a copy where none is needed: a string without escapes
// and a number are returned as views of raw; a string with escapes is unescaped into a new
// slice. It is nil when ok is false.
func TextBytes(raw json.RawMessage) (b []byte, ok bool) {
	raw = trimJSONSpace(raw)
	if len(raw) == 0 {
		return nil, false
	}
	switch c := raw[0]; {
	case c == '"':
		if PlainString(raw) {
			return raw[1 : len(raw)-1 : len(raw)-1], true
		}
		return unquote(raw)
	case c == '-' || (c >= '0' && c <= '9'):
		if !IsNumber(raw) {
			return nil, false
		}
		return raw[:len(raw):len(raw)], true
	}
	return nil, false
}

// unquote returns the content of raw, exactly one JSON string token, as encoding/json decodes it
// into a string: escapes resolved, a \u surrogate pair joined, an unpaired surrogate and invalid
// UTF-8 replaced by U+FFFD. ok is false (and the content nil) when raw is not one valid string
// token. (An Eleme push's message is JSON inside a string, escapes throughout: json.Unmarshal
// validated it again and decoded it through reflection, a tenth of the ingress's CPU; FuzzText
// holds this to it.)
func unquote(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	s := raw[1 : len(raw)-1]
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\\':
			if i+1 >= len(s) {
				return nil, false
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(s[i:])
				if r < 0 {
					return nil, false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if dec := utf16.DecodeRune(r, hex4(s[i:])); dec != unicode.ReplacementChar {
						b = utf8.AppendRune(b, dec)
						i += 6
						continue
					}
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				return nil, false
			}
			i += 2
		case c == '"' || c < 0x20:
			return nil, false
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return b, true
}

// hex4 decodes a \uXXXX escape at the start of s, or returns -1.
func hex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// PlainString reports whether raw is a JSON string with no escapes and no control characters,
// whose content is then the bytes between the quotes (the common case, without a decoder).
func PlainString(raw []byte) bool {
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return false
	}
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

// IsNumber reports whether b is exactly one JSON number (RFC 8259 grammar).
func IsNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(b)
}

// Object decodes b as one JSON object into its raw members (a later duplicate key wins, as in
// encoding/json). Anything else, including trailing data, is an error. The members alias b.
func Object(b []byte) (map[string]json.RawMessage, error) {
	f, err := Split(b)
	if err != nil {
		return nil, err
	}
	return f.Map(), nil
}

// Field is one member of a JSON object: its name, unescaped, and its raw value.
type Field struct {
	Name  []byte
	Value json.RawMessage
}

// Fields are the members of one JSON object in the order they came, each name once: a later
// duplicate took the earlier one's value, as encoding/json decodes an object into a map. Names
// and values alias the input (a name with escapes is a copy, unescaped).
//
// Split and Fields are what the hot path uses instead of a map: on a push of 7 members the map
// and its 7 key strings were 9 of the 32 allocations of parsing, verifying and keying it.
type Fields []Field

// Get returns the value of the member called name.
func (f Fields) Get(name string) (json.RawMessage, bool) {
	for i := range f {
		if string(f[i].Name) == name {
			return f[i].Value, true
		}
	}
	return nil, false
}

// Text is the text of the member called name (see Text); ok is false when it is absent too.
func (f Fields) Text(name string) (string, bool) {
	raw, ok := f.Get(name)
	if !ok {
		return "", false
	}
	return Text(raw)
}

// Map returns the members as a map of name to raw value.
func (f Fields) Map() map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(f))
	for _, fl := range f {
		m[string(fl.Name)] = fl.Value
	}
	return m
}

// Split is Object's work without the map: it validates b (anything but one JSON object,
// trailing data included, is an error) and splits its members itself, at a third of the cost
// of json.Unmarshal into a map (pprof of the flat-out benchmark).
func Split(b []byte) (Fields, error) {
	return SplitAppend(nil, b)
}

// SplitAppend is Split appending to buf[:0]: a caller that keeps the Fields only while it
// parses passes an array of its own (a push has 7 members), so splitting allocates nothing.
func SplitAppend(buf Fields, b []byte) (Fields, error) {
	if !valid(b) {
		return nil, errNotObject
	}
	return members(buf[:0], b)
}

// maxNesting is encoding/json's limit on nesting: json.Valid refuses a deeper value.
const maxNesting = 10000

// valid is json.Valid. Below 2×maxNesting bytes no value can nest deeper than encoding/json
// allows (each level takes an opening and a closing byte), and there tidwall/gjson's Valid,
// which accepts the same texts (FuzzValid) at a quarter of encoding/json's CPU and a third of
// segmentio/encoding's, the validator before it (BenchmarkValid), does the work: it recurses per
// level and has no limit of its own, so a longer body, which could nest without bound, goes to
// encoding/json.
func valid(b []byte) bool {
	if len(b) < 2*maxNesting {
		return gjson.ValidBytes(b)
	}
	return json.Valid(b)
}

// SplitMember splits raw, a member value of an object Object or Split returned (so already
// valid JSON), as one JSON object, without validating it again: a nested object costs only its
// split.
func SplitMember(raw json.RawMessage) (Fields, error) {
	raw = trimJSONSpace(raw)
	if len(raw) == 0 {
		return nil, errNotObject
	}
	return members(nil, raw)
}

// members splits b, valid JSON, into its members when it is an object, appended to f (a new
// slice when f is nil).
func members(f Fields, b []byte) (Fields, error) {
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return nil, errNotObject
	}
	if f == nil {
		f = make(Fields, 0, 8)
	}
	i = skipSpace(b, i+1)
	if b[i] == '}' {
		return f, nil
	}
	for {
		kEnd := endOfString(b, i)
		name, ok := TextBytes(b[i:kEnd]) // a name is a string: b is valid JSON
		if !ok {
			return nil, errNotObject
		}
		i = skipSpace(b, kEnd) + 1 // the colon
		i = skipSpace(b, i)
		vEnd := endOfValue(b, i)
		f = append(f, Field{Name: name, Value: json.RawMessage(b[i:vEnd:vEnd])})
		i = skipSpace(b, vEnd)
		if b[i] != ',' {
			return dedupe(f), nil // the closing brace: b is valid JSON
		}
		i = skipSpace(b, i+1)
	}
}

// dedupe gives each name once, with its last value (at its first position). Small objects, the
// platforms' own, compare every pair; a large one (a body may have thousands of members) is
// indexed, so the cost stays linear.
func dedupe(f Fields) Fields {
	if len(f) <= 16 {
		out := f[:0]
	next:
		for _, fl := range f {
			for j := range out {
				if string(out[j].Name) == string(fl.Name) {
					out[j].Value = fl.Value
					continue next
				}
			}
			out = append(out, fl)
		}
		return out
	}
	at := make(map[string]int, len(f))
	out := f[:0]
	for _, fl := range f {
		if j, ok := at[string(fl.Name)]; ok {
			out[j].Value = fl.Value
			continue
		}
		at[string(fl.Name)] = len(out)
		out = append(out, fl)
	}
	return out
}

var errNotObject = errors.New("not a JSON object")

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index after the string starting at b[i] (a quote). b is valid JSON.
func endOfString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// endOfValue returns the index after the value starting at b[i]. b is valid JSON.
func endOfValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = endOfString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// trimJSONSpace trims the four whitespace characters JSON allows (not every Unicode space).
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
