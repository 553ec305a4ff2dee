package normalize

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/orderpipe/pipeline/schemas"
)

// elemeRecord is a callbacks.raw.v1 value of an Eleme push: envelope order id envOrderID (what
// the ingress keyed it by), push type typ, message msg (the JSON text inside the string), push
// requestId and timestamp, reception time recv, and extra envelope fields (e.g. a pulled
// record's "source").
func elemeRecord(envOrderID string, typ int, msg, requestID string, pushTS int64, recv string, extra string) []byte {
	quoted, _ := json.Marshal(msg)
	body := fmt.Sprintf(`{"appId":1,"requestId":%q,"type":%d,"message":%s,"shopId":7,"timestamp":%d,"signature":"X","userId":2}`, requestID, typ, quoted, pushTS)
	return []byte(fmt.Sprintf(`{"version":1,"ingress_id":%q,"platform":"eleme","order_id":%q,"received_at":%q,"body":%q%s}`,
		requestID, envOrderID, recv, b64(body), extra))
}

// An order message that carries only "id" (OOrder, types 10/217) is an order event, whether the
// ingress keyed it by that id or (before the fix) by its shop; an order type that names no
// order at all is poison for the DLQ, never a silent skip; a shop message is still skipped.
func TestElemeOrderCarryingOnlyID(t *testing.T) {
	const recv = "2016-12-19T15:31:00.000Z"
	order := `{"id":"3000000000000000001","shopId":7,"status":"unprocessed","activeAt":"2016-12-19T23:30:48"}`
	tests := []struct {
		name       string
		give       []byte
		wantOrder  string // "" = no event
		wantSkip   string
		wantReason string
	}{
		{"type 10, keyed by id", elemeRecord("3000000000000000001", 10, order, "r1", 1482161482053, recv, ""), "3000000000000000001", "", ""},
		{"type 217, keyed by id", elemeRecord("3000000000000000001", 217, order, "r1", 1482161482053, recv, ""), "3000000000000000001", "", ""},
		{"type 10, keyed by shop (old ingress)", elemeRecord("", 10, order, "r1", 1482161482053, recv, ""), "3000000000000000001", "", ""},
		{"type 12 naming no order", elemeRecord("", 12, `{"state":"valid","shopId":7,"updateTime":1482161448}`, "r1", 1482161482053, recv, ""), "", "", schemas.DLQReasonValidate},
		{"type 217 naming no order", elemeRecord("", 217, `{"shopId":7,"activeAt":"2016-12-19T23:30:48"}`, "r1", 1482161482053, recv, ""), "", "", schemas.DLQReasonValidate},
		{"shop message 91", elemeRecord("", 91, `{"id":7,"state":"open"}`, "r1", 1482161482053, recv, ""), "", SkipNotOrderEvent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Record(tt.give)
			var e *Error
			switch {
			case tt.wantReason != "":
				if !errors.As(err, &e) || e.Reason != tt.wantReason {
					t.Fatalf("Record = %+v, %v; want dead letter %q", res, err, tt.wantReason)
				}
			case err != nil:
				t.Fatalf("Record: %v", err)
			case tt.wantSkip != "":
				if res.Skip != tt.wantSkip {
					t.Fatalf("Record = %+v; want skip %q", res, tt.wantSkip)
				}
			default:
				if res.Skip != "" || res.Event.OrderID != tt.wantOrder || res.Event.Status != schemas.StatusPlaced {
					t.Fatalf("Record = %+v; want one placed event of order %s", res, tt.wantOrder)
				}
			}
		})
	}
}

// The event id comes only from what identifies the transition: a re-push (new requestId, new
// push timestamp, new reception time), a pulled copy with its own envelope fields, and the two
// push types of "placed" (10 and the 217 that replaced it) give one id, also when the message
// carries no time of its own.
func TestEventIDIgnoresThePush(t *testing.T) {
	const id = "3000000000000000002"
	timed := `{"id":"` + id + `","shopId":7,"activeAt":"2016-12-19T23:30:48"}`
	untimed := `{"orderId":"` + id + `","shopId":7}`
	eventID := func(v []byte) string {
		t.Helper()
		res, err := Record(v)
		if err != nil || res.Skip != "" {
			t.Fatalf("Record = %+v, %v", res, err)
		}
		return res.Event.EventID
	}
	tests := []struct {
		name string
		a, b []byte
	}{
		{"re-push without own time", elemeRecord(id, 217, untimed, "r1", 1482161482053, "2016-12-19T15:31:23.000Z", ""),
			elemeRecord(id, 217, untimed, "r2", 1482161499999, "2016-12-19T15:31:40.000Z", "")},
		{"10 and 217 with the same content", elemeRecord(id, 10, timed, "r1", 1482161482053, "2016-12-19T15:31:23.000Z", ""),
			elemeRecord(id, 217, timed, "r2", 1482161482100, "2016-12-19T15:31:23.000Z", "")},
		{"10 and 217 without own time", elemeRecord(id, 10, untimed, "r1", 1482161482053, "2016-12-19T15:31:23.000Z", ""),
			elemeRecord(id, 217, untimed, "r2", 1482161490000, "2016-12-19T15:31:30.000Z", "")},
		{"pushed and pulled", elemeRecord(id, 217, timed, "r1", 1482161482053, "2016-12-19T15:31:23.000Z", ""),
			elemeRecord(id, 217, timed, "r1", 1482161482053, "2016-12-19T15:45:00.000Z", `,"source":"pull"`)},
	}
	for _, tt := range tests {
		if a, b := eventID(tt.a), eventID(tt.b); a != b {
			t.Errorf("%s: event ids %s and %s, want one", tt.name, a, b)
		}
	}
}

// Platform times are bounded against received_at: a microsecond value in a millisecond field
// (centuries ahead) or a second value in a millisecond field (1970) is dead-lettered with
// reason implausible_time instead of poisoning the order's guard.
func TestImplausibleTimesAreDeadLettered(t *testing.T) {
	const recv = "2026-11-22T08:00:00.000Z"
	const recvMS = int64(1795334400000)
	dw := func(ms int64) []byte {
		body := fmt.Sprintf(`{"content":{"order_original_id":"T1","order_status":"dispatched","action_code":"rider_dispatch","time_status_update":%d},"deliver_times":1,"msg_id":"m","pub_time":1}`, ms)
		return []byte(fmt.Sprintf(`{"version":1,"ingress_id":"i","platform":"dianwoda","order_id":"T1","received_at":%q,"body":%q}`, recv, b64(body)))
	}
	delivery := func(ms int64) []byte {
		return elemeRecord("T2", 55, fmt.Sprintf(`{"orderId":"T2","shopId":7,"state":"delivering","subState":"","updateAt":%d}`, ms), "r", recvMS, recv, "")
	}
	tests := []struct {
		name string
		give []byte
		ok   bool
	}{
		{"dianwoda now", dw(recvMS - 1500), true},
		{"dianwoda a day late", dw(recvMS - 24*3600*1000), true},
		{"dianwoda a few minutes ahead (clock skew)", dw(recvMS + 5*60*1000), true},
		{"dianwoda microseconds", dw(recvMS * 1000), false},
		{"dianwoda seconds", dw(recvMS / 1000), false},
		{"dianwoda a year late", dw(recvMS - 366*24*3600*1000), false},
		{"eleme now", delivery(recvMS - 800), true},
		{"eleme microseconds", delivery(recvMS * 1000), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Record(tt.give)
			if tt.ok {
				if err != nil || res.Skip != "" {
					t.Fatalf("Record = %+v, %v; want one event", res, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason != schemas.DLQReasonImplausibleTime {
				t.Fatalf("Record = %+v, %v; want dead letter %q", res, err, schemas.DLQReasonImplausibleTime)
			}
		})
	}
}
