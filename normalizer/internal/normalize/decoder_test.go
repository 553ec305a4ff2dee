package normalize

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"strconv"
	"testing"
)

// recordWith maps value with the given decoder in place of the package's.
func recordWith(dec func([]byte, any) error, value []byte) (Result, error) {
	saved := unmarshal
	unmarshal = dec
	defer func() { unmarshal = saved }()
	return Record(value)
}

// checkSameAsStdlib: the fast decoder and encoding/json make the same of value: the same event
// or skip, or a dead letter for the same reason.
func checkSameAsStdlib(t *testing.T, value []byte) {
	t.Helper()
	fast, ferr := Record(value)
	std, serr := recordWith(json.Unmarshal, value)
	if (ferr == nil) != (serr == nil) || ReasonOf(ferr) != ReasonOf(serr) {
		t.Fatalf("%q:\nfast decoder: %v\nencoding/json: %v", value, ferr, serr)
	}
	if ferr == nil && !reflect.DeepEqual(fast, std) {
		t.Fatalf("%q:\nfast decoder: %+v\nencoding/json: %+v", value, fast, std)
	}
}

// The decoding corner cases where JSON decoders differ: duplicate keys (the last wins), keys
// matched without regard to case, escapes, invalid UTF-8, numbers kept as their literal, nulls.
var decoderCorners = []string{
	`{"version":1,"platform":"eleme","order_id":"1","received_at":"2026-11-22T10:00:00.000Z","body":"eyJ0eXBlIjoxMiwibWVzc2FnZSI6IntcIm9yZGVySWRcIjpcIjFcIixcInN0YXRlXCI6XCJ2YWxpZFwiLFwib3JkZXJJZFwiOlwiMVwiLFwiVVBEQVRFVElNRVwiOjE3NjM4MDU2MDB9IiwidHlwZSI6MTJ9"}`,
	`{"VERSION":1,"Platform":"dianwoda","order_id":"A","order_id":"B","received_at":"2026-11-22T10:00:00.000Z","query":{"type":["x"]},"body":"eyJjb250ZW50Ijp7Im9yZGVyX29yaWdpbmFsX2lkIjoiQiIsIm9yZGVyX3N0YXR1cyI6ImFycml2ZWQiLCJ0aW1lX3N0YXR1c191cGRhdGUiOjE3NjM4MDU2MDAwMDB9fQ=="}`,
	`{"version":1,"platform":"dianwoda","order_id":"\u00e9\ud83d\ude00","received_at":"2026-11-22T10:00:00.000Z","headers":{"TraceParent":"00-x"},"body":null}`,
	"{\"version\":1,\"platform\":\"dianwoda\",\"order_id\":\"\xff\xfe\",\"received_at\":\"2026-11-22T10:00:00.000Z\"}",
	`{"version":1.0,"platform":"eleme","order_id":"","received_at":"2026-11-22T10:00:00.000Z","body":"e30="}`,
	`{"version":1,"platform":"eleme","order_id":"1","received_at":"2026-11-22T10:00:00.000Z","body":"!!"}`,
	`{"version":1,"platform":"eleme","order_id":"1","received_at":"2026-11-22T10:00:00.000Z","body":"e30="} x`,
	`{"version":1,"platform":"eleme","order_id":"1","received_at":null}`,
	`[]`, `null`, `{"version":"1"}`,
}

func TestDecoderAgreesWithStdlib(t *testing.T) {
	for _, v := range decoderCorners {
		checkSameAsStdlib(t, []byte(v))
	}
	for _, path := range caseFiles(t) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var in caseInput
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatal(err)
		}
		checkSameAsStdlib(t, recordValue(t, in))
	}
}

// FuzzDecoderAgreesWithStdlib looks for a record value the two decoders make different things of.
func FuzzDecoderAgreesWithStdlib(f *testing.F) {
	for _, v := range decoderCorners {
		f.Add([]byte(v))
	}
	for _, path := range caseFiles(f) {
		raw, _ := os.ReadFile(path)
		var in caseInput
		if json.Unmarshal(raw, &in) == nil {
			f.Add(recordValue(f, in))
		}
	}
	f.Fuzz(func(t *testing.T, value []byte) { checkSameAsStdlib(t, value) })
}

// eventIDMarshal is EventID as first written, naming the transition with encoding/json.
func eventIDMarshal(platform, kind, orderID, typ, platformStatus, code, subCode string, occurredMS int64) string {
	name, _ := json.Marshal([]string{"v1", platform, kind, orderID, typ, platformStatus, code, subCode, strconv.FormatInt(occurredMS, 10)})
	h := sha1.New()
	h.Write(eventIDNamespace[:])
	h.Write(name)
	u := h.Sum(nil)[:16]
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	x := hex.EncodeToString(u)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// FuzzEventIDNameIsMarshal: no event id changes with the encoder of its name.
func FuzzEventIDNameIsMarshal(f *testing.F) {
	f.Add("dianwoda", "delivery", "FTP1", "", "arrived", "rider_arrive", "", int64(1_763_800_000_000))
	f.Add("eleme", "order", "1000275004859336560", "10", "<&>\u2028", "\xff", "\"\\", int64(-1))
	f.Fuzz(func(t *testing.T, platform, kind, orderID, typ, status, code, sub string, ms int64) {
		got := EventID(platform, kind, orderID, typ, status, code, sub, ms)
		if want := eventIDMarshal(platform, kind, orderID, typ, status, code, sub, ms); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
}
