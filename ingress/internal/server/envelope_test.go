package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/schemas"
)

// marshalled is what json.Marshal makes of env with hdrs as its Headers map: what
// appendEnvelope must write.
func marshalled(t *testing.T, env schemas.RawEnvelope, hdrs []envHeader) string {
	t.Helper()
	if len(hdrs) > 0 {
		env.Headers = map[string]string{}
		for _, h := range hdrs {
			env.Headers[h.name] = h.value
		}
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAppendEnvelopeMatchesMarshal(t *testing.T) {
	at := schemas.At(time.Date(2026, 12, 3, 9, 58, 1, 123456789, time.UTC))
	full := []envHeader{{"Content-Type", "application/json; charset=utf-8"}, {"User-Agent", "eleme-push/1.0 <&>"},
		{"X-Request-Id", "req-\u2028-1"}, {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, {"tracestate", "k=v"}}
	cases := []struct {
		name string
		env  schemas.RawEnvelope
		hdrs []envHeader
	}{
		{"eleme push", schemas.RawEnvelope{Version: schemas.RawEnvelopeVersion, IngressID: "0192f0c4-7c1a-7d3e-9b1e-3f6c2a1b4c5d",
			Platform: schemas.PlatformEleme, OrderID: "3069876543210987654", ReceivedAt: at, Body: []byte(`{"requestId":"x","message":"{\"orderId\":\"1\"}"}`)},
			[]envHeader{{"Content-Type", "application/json"}}},
		{"every field", schemas.RawEnvelope{Version: 7, IngressID: "id\x00\"\\", Platform: "dianwoda", OrderID: "<order&>",
			ReceivedAt: at, Query: map[string][]string{"type": {"status"}, "nonce": {"a", "b"}, "timestamp": {""}, "null": nil, "多": {"\xff"}},
			Body: []byte{0, 1, 2, 0xff, 0xfe}, Source: schemas.SourcePull}, full},
		{"empty body, no headers, empty query", schemas.RawEnvelope{Version: 1, ReceivedAt: at, Query: map[string][]string{}, Body: []byte{}}, nil},
		{"nil body", schemas.RawEnvelope{Version: 1, ReceivedAt: at}, nil},
		{"zero time", schemas.RawEnvelope{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := string(appendEnvelope(nil, &c.env, c.hdrs))
			if want := marshalled(t, c.env, c.hdrs); got != want {
				t.Fatalf("appendEnvelope:\n%s\njson.Marshal:\n%s", got, want)
			}
		})
	}
}

// Every field of the envelope is one appendEnvelope writes: a new one fails here until it does
// (and the cases above set it).
func TestAppendEnvelopeCoversEveryField(t *testing.T) {
	written := []string{"Version", "IngressID", "Platform", "OrderID", "ReceivedAt", "Query", "Headers", "Body", "Source"}
	typ := reflect.TypeFor[schemas.RawEnvelope]()
	for i := range typ.NumField() {
		if f := typ.Field(i).Name; !slices.Contains(written, f) {
			t.Errorf("schemas.RawEnvelope.%s is not written by appendEnvelope", f)
		}
	}
}

// envelopeHeaders gives the kept headers in keptHeaders's order, so that order must be their
// envelope names' (json.Marshal writes a map's keys sorted).
func TestKeptHeadersInNameOrder(t *testing.T) {
	if !slices.IsSorted(keptHeaderNames) {
		t.Fatalf("the envelope names of keptHeaders %v are not in order", keptHeaderNames)
	}
	h := http.Header{}
	for i := len(keptHeaders) - 1; i >= 0; i-- {
		h.Set(keptHeaders[i], "v"+keptHeaders[i])
	}
	h.Set("Authorization", "secret")
	h["X-Request-Id"] = []string{"", "second"} // only the first value counts, and an empty one is not kept
	got := envelopeHeaders(nil, h)
	want := []envHeader{{"Content-Type", "vContent-Type"}, {"User-Agent", "vUser-Agent"},
		{"traceparent", "vTraceparent"}, {"tracestate", "vTracestate"}}
	if !slices.Equal(got, want) {
		t.Fatalf("envelopeHeaders = %v, want %v", got, want)
	}
}

func FuzzAppendEnvelope(f *testing.F) {
	f.Add("0192f0c4-7c1a-7d3e-9b1e-3f6c2a1b4c5d", "3069876543210987654", []byte(`{"a":1}`), "application/json", "type", "status", "", int64(1764755881123))
	f.Add("<&>", "\u2028\xff", []byte{}, "\x00", "", "", "pull", int64(-62135596800000))
	f.Fuzz(func(t *testing.T, id, order string, body []byte, header, qk, qv, source string, ms int64) {
		env := schemas.RawEnvelope{Version: schemas.RawEnvelopeVersion, IngressID: id, Platform: schemas.PlatformEleme,
			OrderID: order, ReceivedAt: schemas.UnixMilli(ms), Body: body, Source: source}
		if qk != "" || qv != "" {
			env.Query = map[string][]string{qk: {qv, header}, qv + "x": {}}
		}
		var hdrs []envHeader
		if header != "" {
			hdrs = []envHeader{{"Content-Type", header}, {"traceparent", id}}
		}
		if got, want := string(appendEnvelope(nil, &env, hdrs)), marshalled(t, env, hdrs); got != want {
			t.Fatalf("appendEnvelope:\n%s\njson.Marshal:\n%s", got, want)
		}
	})
}
