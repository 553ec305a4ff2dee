package dispatch

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/orderpipe/pipeline/schemas"
)

// Records the two decoders must agree on beyond the contract's examples: invalid JSON, wrong
// types, timestamps off the contract's format, unknown and repeated members, case-folded names,
// escapes, nulls, trailing data.
var eventCorners = []string{
	``, `null`, `{}`, `[]`, `"x"`, `{"event_id":1}`, `{"terminal":"true"}`, `{"event_id":"a"`, `{"event_id":"a"}x`,
	`{"event_id":"a"} `, `{"Event_ID":"a","PLATFORM":"eleme"}`, `{"event_id":"a","event_id":"b"}`,
	`{"event_id":"\u00e9\ud83d\ude00","order_id":"\"q\"\\\/"}`, `{"event_id":"\ud800"}`, "{\"event_id\":\"\xff\"}",
	`{"occurred_at":"2026-11-30T10:00:00.000Z"}`, `{"occurred_at":"2026-11-30T10:00:00Z"}`, `{"occurred_at":1}`,
	`{"occurred_at":null}`, `{"reason":null,"rider":{"phone":"1"}}`, `{"reason":{"code":1}}`, `{"stale":null}`,
	`{"refund":{"amount":"12.30"},"unknown":{"a":[1,2,{"b":null}]}}`, `{"terminal":true,"terminal":false}`,
}

// The dispatcher's decoder (goccy/go-json) makes of a record what encoding/json makes of it:
// the same error-or-not and the same event.
func TestEventDecoderAgreesWithStdlib(t *testing.T) {
	for _, v := range eventCorners {
		checkEventSameAsStdlib(t, []byte(v))
	}
	files, err := filepath.Glob("../../../schemas/testdata/status-event.*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no status event examples (%v)", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ev schemas.StatusEvent
		if err := unmarshalEvent(b, &ev); err != nil || ev.EventID == "" {
			t.Errorf("%s: %v, event id %q: the contract's example does not decode", f, err, ev.EventID)
		}
		checkEventSameAsStdlib(t, b)
	}
}

// FuzzEventDecoder looks for a record value the two decoders make different things of.
func FuzzEventDecoder(f *testing.F) {
	for _, v := range eventCorners {
		f.Add([]byte(v))
	}
	files, _ := filepath.Glob("../../../schemas/testdata/status-event.*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, value []byte) { checkEventSameAsStdlib(t, value) })
}

func checkEventSameAsStdlib(t *testing.T, value []byte) {
	t.Helper()
	var got, want schemas.StatusEvent
	gotErr := unmarshalEvent(value, &got)
	wantErr := json.Unmarshal(value, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%q: decoder error %v, encoding/json error %v", value, gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: decoder made %+v, encoding/json %+v", value, got, want)
	}
}

// BenchmarkEventDecode compares the dispatcher's decoder with encoding/json on the contract's
// delivery example.
func BenchmarkEventDecode(b *testing.B) {
	value, err := os.ReadFile("../../../schemas/testdata/status-event.delivery.json")
	if err != nil {
		b.Fatal(err)
	}
	for name, dec := range map[string]func([]byte, any) error{"goccy": unmarshalEvent, "stdlib": json.Unmarshal} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var ev schemas.StatusEvent
				if err := dec(value, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
