package normalize

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/orderpipe/pipeline/schemas"
)

// seedBodies adds every golden case's body of platform as a seed.
func seedBodies(f *testing.F, platform string) {
	for _, path := range caseFiles(f) {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		var in caseInput
		if err := json.Unmarshal(raw, &in); err != nil {
			f.Fatal(err)
		}
		if in.Envelope.Platform == platform {
			f.Add(in.Envelope.OrderID, []byte(in.Body))
		}
	}
}

// checkFuzzed holds for any input: a mapper never panics, errors are classified, and an event
// is well formed, carries the envelope's order id and is the same when mapped again.
func checkFuzzed(t *testing.T, mapper func(*schemas.RawEnvelope) (schemas.StatusEvent, error), platform, orderID string, body []byte) {
	env := &schemas.RawEnvelope{Version: 1, Platform: platform, OrderID: orderID, ReceivedAt: schemas.UnixMilli(1), Body: body}
	ev, err := mapper(env)
	if errors.Is(err, errNotOrderEvent) {
		return
	}
	if err != nil {
		if r := ReasonOf(err); r != schemas.DLQReasonDecode && r != schemas.DLQReasonValidate {
			t.Fatalf("unexpected reason %q: %v", r, err)
		}
		return
	}
	info, ok := schemas.LookupStatus(ev.Kind, ev.Status)
	if !ok || info.Terminal != ev.Terminal {
		t.Fatalf("status %s/%s terminal %v is not in the vocabulary", ev.Kind, ev.Status, ev.Terminal)
	}
	if (ev.OrderID != orderID && orderID != "") || ev.Platform != platform || ev.EventID == "" || ev.OccurredAt.IsZero() || ev.PlatformStatus == "" {
		t.Fatalf("malformed event %+v", ev)
	}
	again, _ := mapper(env)
	if !reflect.DeepEqual(ev, again) {
		t.Fatalf("not deterministic: %+v vs %+v", ev, again)
	}
	if _, err := json.Marshal(ev); err != nil {
		t.Fatalf("event does not marshal: %v", err)
	}
}

func FuzzDianwoda(f *testing.F) {
	seedBodies(f, schemas.PlatformDianwoda)
	f.Add("A", []byte(`{"content":{"order_original_id":"A","order_status":"x","time_status_update":1e3}}`))
	f.Add("A", []byte(`{"content":{"order_original_id":"A","order_status":"created","time_status_update":"-1"}}`))
	f.Fuzz(func(t *testing.T, orderID string, body []byte) {
		checkFuzzed(t, Dianwoda, schemas.PlatformDianwoda, orderID, body)
	})
}

func FuzzEleme(f *testing.F) {
	seedBodies(f, schemas.PlatformEleme)
	f.Add("1", []byte(`{"type":"56","message":"{\"orderId\":1,\"updateAt\":1.5e12}"}`))
	f.Add("1", []byte(`{"type":12,"message":{"id":"1","activeAt":"2016-12-19T23:30:48"}}`))
	f.Fuzz(func(t *testing.T, orderID string, body []byte) {
		checkFuzzed(t, Eleme, schemas.PlatformEleme, orderID, body)
	})
}

// FuzzRecord feeds whole record values: Record never panics and every error is classified.
func FuzzRecord(f *testing.F) {
	for _, path := range caseFiles(f) {
		raw, _ := os.ReadFile(path)
		var in caseInput
		if json.Unmarshal(raw, &in) == nil {
			f.Add(recordValue(f, in))
		}
	}
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		res, err := Record(value)
		if err != nil {
			switch ReasonOf(err) {
			case schemas.DLQReasonDecode, schemas.DLQReasonValidate, schemas.DLQReasonUnsupportedVersion, schemas.DLQReasonUnsupportedPlatform,
				schemas.DLQReasonImplausibleTime:
			default:
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if res.Skip == "" && res.Event.EventID == "" {
			t.Fatalf("want one event or a skip, got %+v", res)
		}
		if res.Skip != "" && !strings.EqualFold(res.Skip, SkipNotOrderEvent) {
			t.Fatalf("unknown skip %q", res.Skip)
		}
	})
}
