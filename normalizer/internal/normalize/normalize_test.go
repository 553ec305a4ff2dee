package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/orderpipe/pipeline/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/cases")

// caseInput is a testdata/cases/*.in.json file: the envelope's fields and the platform body
// exactly as the platform sent it (as a JSON value, so it stays readable).
type caseInput struct {
	Envelope schemas.RawEnvelope `json:"envelope"`
	Body     json.RawMessage     `json:"body"`
}

type caseOutput struct {
	Events []schemas.StatusEvent `json:"events,omitempty"`
	Skip   string                `json:"skip,omitempty"`
	Error  *caseError            `json:"error,omitempty"`
}

type caseError struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// recordValue builds the callbacks.raw.v1 value the ingress would have written.
func recordValue(t testing.TB, in caseInput) []byte {
	t.Helper()
	env := in.Envelope
	env.Body = []byte(in.Body)
	v, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func runCase(t testing.TB, path string) caseOutput {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var in caseInput
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	res, err := Record(recordValue(t, in))
	var out caseOutput
	switch {
	case err != nil:
		out.Error = &caseError{Reason: ReasonOf(err), Message: err.Error()}
	default:
		out.Skip = res.Skip
		if res.Skip == "" {
			out.Events = []schemas.StatusEvent{res.Event}
		}
	}
	return out
}

func caseFiles(t testing.TB) []string {
	files, err := filepath.Glob("testdata/cases/*.in.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	return files
}

func TestGolden(t *testing.T) {
	for _, in := range caseFiles(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			out := runCase(t, in)
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(in, ".in.json") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file (go test -update to accept):\n got: %s\nwant: %s", name, got, want)
			}
			// Expectations that follow from the case's name, so a golden file cannot silently
			// accept the wrong class of outcome.
			switch {
			case strings.Contains(name, "_error_"):
				if out.Error == nil {
					t.Errorf("an _error_ case must fail, got %+v", out)
				}
			case strings.Contains(name, "not_order_event"):
				if out.Skip != SkipNotOrderEvent {
					t.Errorf("want skip %q, got %+v", SkipNotOrderEvent, out)
				}
			default:
				if len(out.Events) != 1 {
					t.Fatalf("want one event, got %+v", out)
				}
				checkEvent(t, out.Events[0])
			}
		})
	}
}

// checkEvent checks invariants every emitted event must hold.
func checkEvent(t *testing.T, ev schemas.StatusEvent) {
	t.Helper()
	info, ok := schemas.LookupStatus(ev.Kind, ev.Status)
	if !ok {
		t.Errorf("status %q is not defined for kind %q", ev.Status, ev.Kind)
	}
	if info.Terminal != ev.Terminal {
		t.Errorf("terminal %v, the vocabulary says %v", ev.Terminal, info.Terminal)
	}
	if ev.EventID == "" || ev.PlatformStatus == "" || ev.OrderID == "" || ev.OccurredAt.IsZero() || ev.ReceivedAt.IsZero() {
		t.Errorf("a required field is empty: %+v", ev)
	}
	if ev.Stale {
		t.Errorf("the mapper never decides staleness")
	}
}

// TestEveryMappingRowHasAGoldenCase proves the golden cases cover MAPPING.md row by row.
func TestEveryMappingRowHasAGoldenCase(t *testing.T) {
	var events []schemas.StatusEvent
	for _, in := range caseFiles(t) {
		events = append(events, runCase(t, in).Events...)
	}
	seedCodes := map[string]bool{}
	for _, r := range schemas.DianwodaSeedRows() {
		seedCodes[r[1]] = true
	}
	matches := func(r schemas.MappingRow, ev schemas.StatusEvent) bool {
		if ev.Platform != r.Platform {
			return false
		}
		code, sub := "", ""
		if ev.Reason != nil {
			code, sub = ev.Reason.Code, ev.Reason.SubCode
		}
		switch {
		case r.Platform == schemas.PlatformDianwoda && r.OrderStatus == "(known)":
			return schemas.DianwodaStatus(ev.PlatformStatus) != schemas.StatusUnknown && !seedCodes[code] && ev.Status == schemas.DianwodaStatus(ev.PlatformStatus)
		case r.Platform == schemas.PlatformDianwoda && r.OrderStatus == "(any other)":
			return ev.Status == schemas.StatusUnknown && schemas.DianwodaStatus(ev.PlatformStatus) == schemas.StatusUnknown
		case r.Platform == schemas.PlatformDianwoda:
			return ev.PlatformStatus == r.OrderStatus && code == r.ActionCode && sub == r.ActionSubCode && ev.Kind == r.Kind && ev.Status == r.Status && ev.Terminal == r.Terminal
		case r.ElemeType != 0:
			return ev.Source != nil && ev.Source.Type == strconv.Itoa(r.ElemeType) && ev.Kind == r.Kind && ev.Status == r.Status && ev.Terminal == r.Terminal
		case r.ElemeState != "":
			_, known := schemas.ElemeType(atoi(ev.Source.Type))
			return !known && ev.PlatformStatus == r.ElemeState && ev.Kind == r.Kind && ev.Status == r.Status && ev.Terminal == r.Terminal
		default: // any other type, by message shape
			_, known := schemas.ElemeType(atoi(ev.Source.Type))
			return !known && ev.Status == schemas.StatusUnknown
		}
	}
	for _, r := range schemas.MappingRows() {
		found := false
		for _, ev := range events {
			if matches(r, ev) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("mapping row has no golden case: %+v", r)
		}
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func TestRecordEnvelopeErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"not json", `{"version":1,`, schemas.DLQReasonDecode},
		{"body not base64", `{"version":1,"platform":"eleme","order_id":"1","received_at":"2026-11-22T08:00:00.000Z","body":"%%%"}`, schemas.DLQReasonDecode},
		{"bad received_at", `{"version":1,"platform":"eleme","order_id":"1","received_at":"yesterday","body":""}`, schemas.DLQReasonDecode},
		{"missing received_at", `{"version":1,"platform":"eleme","order_id":"1","body":""}`, schemas.DLQReasonValidate},
		{"version 0", `{"platform":"eleme","order_id":"1","received_at":"2026-11-22T08:00:00.000Z","body":""}`, schemas.DLQReasonUnsupportedVersion},
		{"empty body", `{"version":1,"platform":"eleme","order_id":"1","received_at":"2026-11-22T08:00:00.000Z","body":""}`, schemas.DLQReasonDecode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Record([]byte(tt.give))
			var e *Error
			if !errors.As(err, &e) || e.Reason != tt.want {
				t.Fatalf("Record = %v, want reason %q", err, tt.want)
			}
		})
	}
}

// TestEventIDCollapsesResends: the same transition re-sent under a new msg_id/requestId, a new
// delivery attempt, another rider phone or another reception time keeps its event_id; a change
// in what happened or when changes it.
func TestEventIDCollapsesResends(t *testing.T) {
	dw := func(msgID string, attempt int, status, code string, ms int64, recv string) string {
		body := fmt.Sprintf(`{"content":{"order_original_id":"A1","order_status":%q,"action_code":%q,"rider_mobile":"1360000%04d","time_status_update":%d},"deliver_times":%d,"msg_id":%q,"pub_time":1}`, status, code, attempt, ms, attempt, msgID)
		env := fmt.Sprintf(`{"version":1,"ingress_id":%q,"platform":"dianwoda","order_id":"A1","received_at":%q,"body":%q}`, msgID, recv, b64(body))
		res, err := Record([]byte(env))
		if err != nil {
			t.Fatal(err)
		}
		return res.Event.EventID
	}
	base := dw("m1", 1, "dispatched", "rider_dispatch", 1795334399000, "2026-11-22T08:00:00.000Z")
	tests := []struct {
		name string
		give string
		same bool
	}{
		{"platform retry, same msg_id", dw("m1", 2, "dispatched", "rider_dispatch", 1795334399000, "2026-11-22T08:00:05.000Z"), true},
		{"re-sent under a new msg_id", dw("m2", 1, "dispatched", "rider_dispatch", 1795334399000, "2026-11-22T09:00:00.000Z"), true},
		{"another status", dw("m1", 1, "arrived", "rider_dispatch", 1795334399000, "2026-11-22T08:00:00.000Z"), false},
		{"another action code", dw("m1", 1, "dispatched", "rider_switch", 1795334399000, "2026-11-22T08:00:00.000Z"), false},
		{"another time", dw("m1", 1, "dispatched", "rider_dispatch", 1795334399001, "2026-11-22T08:00:00.000Z"), false},
	}
	for _, tt := range tests {
		if (tt.give == base) != tt.same {
			t.Errorf("%s: id %s vs %s, want same=%v", tt.name, tt.give, base, tt.same)
		}
	}
}

func TestEventIDFormat(t *testing.T) {
	id := EventID("eleme", "order", "1", "12", "valid", "", "", 1)
	if len(id) != 36 || id[14] != '5' || !strings.ContainsRune("89ab", rune(id[19])) {
		t.Fatalf("%s is not a UUIDv5", id)
	}
	if id != EventID("eleme", "order", "1", "12", "valid", "", "", 1) {
		t.Fatal("not deterministic")
	}
	// Field boundaries are unambiguous: moving text between fields changes the id.
	if EventID("a", "b|c", "", "", "", "", "", 0) == EventID("a|b", "c", "", "", "", "", "", 0) {
		t.Fatal("ambiguous name")
	}
}

func b64(s string) string {
	v, _ := json.Marshal([]byte(s))
	return strings.Trim(string(v), `"`)
}
