package schemas

import (
	"fmt"
	"time"
)

// TimeLayout is the contract's timestamp format: RFC 3339, UTC, exactly three fraction digits.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Timestamp is a point in time that always marshals as TimeLayout in UTC, millisecond precision.
type Timestamp struct{ time.Time }

// At returns t truncated to the millisecond, as the contract carries it.
func At(t time.Time) Timestamp { return Timestamp{t.UTC().Truncate(time.Millisecond)} }

// UnixMilli returns the Timestamp for a platform's millisecond epoch value.
func UnixMilli(ms int64) Timestamp { return Timestamp{time.UnixMilli(ms).UTC()} }

func (t Timestamp) String() string { return t.UTC().Format(TimeLayout) }

// MarshalJSON writes the contract's format.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	// One allocation (every envelope and event carries a timestamp): 26 bytes, in 32.
	b := make([]byte, 0, 32)
	b = append(b, '"')
	b = AppendTime(b, t.Time)
	return append(b, '"'), nil
}

// AppendTime appends t in TimeLayout, in UTC: what t.UTC().AppendFormat(b, TimeLayout) appends
// (the fraction truncated, not rounded; FuzzAppendTime), without interpreting the layout for
// every envelope and event (a fifth of a microsecond each; BenchmarkAppendTime). A year
// outside 0–9999 takes AppendFormat. The normalizer's reflection-free event encoder uses it too.
func AppendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeLayout)
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / int(time.Millisecond)
	return append(b,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// UnmarshalJSON accepts exactly the contract's format.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("timestamp: want a JSON string, got %s", b)
	}
	v, err := time.Parse(TimeLayout, string(b[1:len(b)-1]))
	if err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	t.Time = v
	return nil
}
