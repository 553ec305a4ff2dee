package chaos

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/schemas"
)

// The checker must be able to fail: each case plants one kind of fault in otherwise clean
// outputs and expects exactly that count.
func TestCheckFindsWhatIsWrong(t *testing.T) {
	sandbox := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sandbox/calls":
			// Call 1 carried an order of an earlier load (a warm-up) only.
			_, _ = w.Write([]byte(`[{"seq":1,"shop":"2100000000","orders":["7"],"outcome":"ok"},{"seq":2,"shop":"2100000000","orders":["7","42"],"outcome":"ok"}]`))
		case "/sandbox/orders":
			_, _ = w.Write([]byte(`[{"shop":"2100000000","order_id":"42","distri_status":1,"accepted":1}]`))
		}
	}))
	defer sandbox.Close()
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	flow := []Transition{
		{Platform: "dianwoda", OrderID: "DD42", Kind: "delivery", PlatformStatus: "created", Code: "order_create", OccurredMS: t0.UnixMilli()},
		{Platform: "dianwoda", OrderID: "DD42", Kind: "delivery", PlatformStatus: "completed", Code: "customer_sign", OccurredMS: t0.UnixMilli() + 1500, DDDelivered: true},
	}
	event := func(tr Transition, id string, stale bool, offset int64) StatusRec {
		return StatusRec{Ev: schemas.StatusEvent{EventID: id, Platform: tr.Platform, OrderID: tr.OrderID, Kind: tr.Kind,
			PlatformStatus: tr.PlatformStatus, Reason: &schemas.Reason{Code: tr.Code}, OccurredAt: schemas.UnixMilli(tr.OccurredMS), Stale: stale},
			Offset: offset, SeenAt: t0.Add(time.Minute)}
	}
	clean := func() []StatusRec { return []StatusRec{event(flow[0], "a", false, 0), event(flow[1], "b", false, 1)} }
	result := []ResultRec{{Key: "42", Outcome: "accepted", SeenAt: t0.Add(time.Minute)}}
	for _, tc := range []struct {
		name   string
		status []StatusRec
		raw    []RawRec
		want   func(r *Report) int
	}{
		{"clean", clean(), nil, func(r *Report) int {
			return r.Lost + r.Duplicated + r.Redelivered + r.WrongFinal + r.Phantoms + r.Leaks + r.DDMissing + 1
		}},
		{"calls of this load's orders", clean(), nil, func(r *Report) int {
			if r.DDCalls != 2 {
				return 0
			}
			return r.DDCallsOwn
		}},
		{"lost", clean()[:1], nil, func(r *Report) int { return r.Lost }},
		{"duplicated", append(clean(), event(flow[1], "c", false, 2)), nil, func(r *Report) int { return r.Duplicated }},
		{"redelivered", append(clean(), event(flow[1], "b", false, 2)), nil, func(r *Report) int { return r.Redelivered }},
		{"wrong final", append(clean(), event(flow[0], "a", false, 2)), nil, func(r *Report) int { return r.WrongFinal }},
		{"stale copy is not a wrong final", append(clean(), event(flow[0], "a", true, 2)), nil, func(r *Report) int { return 1 - r.WrongFinal }},
		{"phantom", append(clean(), event(Transition{Platform: "eleme", OrderID: "1", Kind: "order", PlatformStatus: "valid"}, "z", false, 0)), nil,
			func(r *Report) int { return r.Phantoms }},
		{"forged leak", clean(), []RawRec{{OrderID: ForgedPrefix + "1"}}, func(r *Report) int { return r.Leaks }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLedger()
			l.Started, l.Finished = t0, t0.Add(time.Second)
			for _, tr := range flow {
				l.Trans[tr.Key()] = &TransState{T: tr, FirstAt: t0, AckedAt: t0, Acks: 1}
				l.Orders["dianwoda:DD42"] = append(l.Orders["dianwoda:DD42"], tr.Key())
			}
			c := &Collector{Status: tc.status, Raw: tc.raw, Results: result}
			r := Check(context.Background(), tc.name, l, c, Sandbox{URL: sandbox.URL})
			if got := tc.want(r); got != 1 {
				t.Errorf("want exactly one finding, got %d:\n%s", got, r)
			}
		})
	}
}
