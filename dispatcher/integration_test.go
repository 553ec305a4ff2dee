package main

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/dispatcher/internal/ddsandbox"
	"github.com/orderpipe/pipeline/dispatcher/internal/writeback"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/schemas"
)

const appKey = "2100000000"

func byOutcome(rs []writeback.Result) map[string]map[string]writeback.Result {
	out := map[string]map[string]writeback.Result{}
	for _, r := range rs {
		if out[r.Outcome] == nil {
			out[r.Outcome] = map[string]writeback.Result{}
		}
		out[r.Outcome][r.DangdangOrderID] = r
	}
	return out
}

// 1,000 delivered orders for one shop: at most 11 calls, each order accepted once, every event
// copied to the delivery topic, and every offset committed. The topics may hold a record twice
// (the producer retries a batch a broker refused in part; the contract allows duplicates,
// never reordering), so the reads wait for 1,000 distinct orders and events, and a second
// record of an order may only repeat it.
func TestThousandOrdersOneShop(t *testing.T) {
	h := newHarness(t, map[string]string{"DANGDANG_BATCH_WINDOW": "1s"})
	now := time.Now()
	var evs []schemas.StatusEvent
	for i := range 1000 {
		evs = append(evs, event("dianwoda", fmt.Sprintf("DD%d", 5000000+i), schemas.StatusDelivered, now))
	}
	h.produce(evs...)
	stop := h.start()

	res := results(t, h.read("TOPIC_DANGDANG_RESULTS", 60*time.Second, distinct(1000, func(m kafka.Message) string { return string(m.Key) })))
	eventually(t, 10*time.Second, "offsets committed", func() bool { return h.committed() == 1000 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	acc := byOutcome(res)[writeback.OutcomeAccepted]
	if len(acc) != 1000 {
		t.Fatalf("results %d, accepted distinct %d, want 1000 accepted", len(res), len(acc))
	}
	for _, r := range res {
		if one := acc[r.DangdangOrderID]; r.Outcome != writeback.OutcomeAccepted || r.DistriStatus != one.DistriStatus ||
			!slices.Equal(r.EventIDs, one.EventIDs) {
			t.Fatalf("order %s: record %+v, want only copies of %+v", r.DangdangOrderID, r, one)
		}
	}
	calls := h.sb.Calls(appKey)
	if len(calls) > 11 {
		t.Errorf("%d calls, want at most 11", len(calls))
	}
	orders := h.sb.Orders(appKey)
	if len(orders) != 1000 {
		t.Fatalf("sandbox knows %d orders", len(orders))
	}
	for _, o := range orders {
		if o.Accepted != 1 || o.DistriStatus != 1 {
			t.Fatalf("order %+v: want accepted once as delivered", o)
		}
	}
	copies := h.read("TOPIC_DELIVERY", 10*time.Second, distinct(1000, func(m kafka.Message) string { return kafkaio.Header(m, schemas.HeaderCEID) }))
	ids := map[string]bool{}
	for _, m := range copies {
		ids[kafkaio.Header(m, schemas.HeaderCEID)] = true
	}
	if len(ids) != 1000 || ids[""] {
		t.Errorf("delivery topic has %d records, %d distinct event ids (want 1000, headers kept)", len(copies), len(ids))
	}
	t.Logf("%d calls for 1000 orders; %d result records, %d delivery copies", len(calls), len(res), len(copies))
}

// distinct is a read condition: at least n distinct ids among the records read.
func distinct(n int, id func(kafka.Message) string) func([]kafka.Message) bool {
	return func(ms []kafka.Message) bool {
		if len(ms) < n {
			return false
		}
		seen := make(map[string]bool, len(ms))
		for _, m := range ms {
			seen[id(m)] = true
		}
		return len(seen) >= n
	}
}

// Duplicates and out-of-order events coalesce: one order once per call with its latest state;
// stale events and forbidden transitions are skipped and recorded; poison goes to the DLQ.
func TestCoalesceAndRules(t *testing.T) {
	h := newHarness(t, nil)
	t0 := time.Now().Add(-time.Minute)
	dup := event("dianwoda", "DD100", schemas.StatusDelivered, t0)
	late := event("eleme", "DD101", schemas.StatusDeliveryFailed, t0) // older, arrives last
	newer := event("eleme", "DD101", schemas.StatusDelivered, t0.Add(time.Second))
	stale := event("dianwoda", "DD102", schemas.StatusDelivered, t0)
	stale.Stale = true
	picked := event("dianwoda", "DD103", schemas.StatusPickedUp, t0)
	failed := event("dianwoda", "DD104", schemas.StatusDeliveryFailed, t0)
	order := event("eleme", "DD105", "accepted", t0)
	order.Kind = schemas.KindOrder
	h.produce(dup, dup, newer, late, stale, picked, failed, order)
	h.write([]kafka.Message{{Key: []byte("dianwoda:garbage"), Value: []byte("{not json")}})
	stop := h.start()

	res := results(t, h.read("TOPIC_DANGDANG_RESULTS", 60*time.Second, func(m []kafka.Message) bool { return len(m) >= 4 }))
	out := byOutcome(res)
	if r := out[writeback.OutcomeAccepted]["100"]; len(r.EventIDs) != 2 || r.DistriStatus != "1" {
		t.Errorf("duplicate: %+v", r)
	}
	if r := out[writeback.OutcomeAccepted]["101"]; r.DistriStatus != "1" || len(r.EventIDs) != 2 || r.Platform != "eleme" || r.OrderID != "DD101" {
		t.Errorf("out of order: %+v (want delivered, the later occurred_at, covering both events)", r)
	}
	if r := out[writeback.OutcomeSkipped]["102"]; r.Reason != "stale" {
		t.Errorf("stale: %+v", out)
	}
	if _, ok := h.sb.Order(appKey, "102"); ok {
		t.Error("a stale event reached Dangdang")
	}
	if _, ok := h.sb.Order(appKey, "103"); ok {
		t.Error("picked_up reached Dangdang")
	}
	if r := out[writeback.OutcomeAccepted]["104"]; r.DistriStatus != "2" {
		t.Errorf("failed: %+v", r)
	}
	for _, c := range h.sb.Calls(appKey) {
		seen := map[string]bool{}
		for _, id := range c.Orders {
			if seen[id] {
				t.Errorf("order %s twice in call %d", id, c.Seq)
			}
			seen[id] = true
		}
	}
	// failed → delivered is never sent, even in a later batch (Redis remembers what was sent).
	h.produce(event("dianwoda", "DD104", schemas.StatusDelivered, t0.Add(time.Hour)))
	res = results(t, h.read("TOPIC_DANGDANG_RESULTS", 60*time.Second, func(m []kafka.Message) bool { return len(m) >= 5 }))
	if last := res[len(res)-1]; last.DangdangOrderID != "104" || last.Outcome != writeback.OutcomeSkipped || last.Reason != writeback.SkipFailedToDelivered {
		t.Errorf("failed→delivered: %+v", last)
	}
	if o, _ := h.sb.Order(appKey, "104"); o.DistriStatus != 2 || o.Accepted != 1 || o.Rejected != 0 {
		t.Errorf("sandbox order 104 = %+v", o)
	}
	dlq := h.read("TOPIC_STATUS_DLQ", 10*time.Second, func(m []kafka.Message) bool { return len(m) >= 1 })
	if len(dlq) != 1 || string(dlq[0].Value) != "{not json" || kafkaio.Header(dlq[0], schemas.HeaderDLQReason) != "decode" ||
		kafkaio.Header(dlq[0], schemas.HeaderDLQTopic) != h.env["TOPIC_STATUS"] || kafkaio.Header(dlq[0], schemas.HeaderDLQService) != "dispatcher" {
		t.Errorf("dlq = %+v", dlq)
	}
	if lc := h.read("TOPIC_LIFECYCLE", 10*time.Second, func(m []kafka.Message) bool { return len(m) >= 1 }); len(lc) != 1 {
		t.Errorf("lifecycle topic has %d records", len(lc))
	}
	eventually(t, 10*time.Second, "offsets committed", func() bool { return h.committed() == 10 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Every fault the sandbox can inject leaves no order unreported: each ends accepted, recorded as
// rejected, or dead-lettered (result record and DLQ record).
func TestFaultsLeaveNoOrderUnreported(t *testing.T) {
	tests := []struct {
		name      string
		faults    []ddsandbox.Fault
		pause     bool // wait for the shop to be paused, check nothing is reported, then clear the faults
		accepted  int
		rejected  int
		dead      int
		wantCalls string // a call outcome the sandbox must have seen
	}{
		{"5xx then recovery", []ddsandbox.Fault{{Kind: ddsandbox.FaultHTTP5xx, Times: 2}}, false, 20, 0, 0, "http_5xx"},
		{"timeout then recovery", []ddsandbox.Fault{{Kind: ddsandbox.FaultTimeout, Times: 1, DelayMS: 4000}}, false, 20, 0, 0, "timeout"},
		{"slow", []ddsandbox.Fault{{Kind: ddsandbox.FaultSlow, Times: 1, DelayMS: 300}}, false, 20, 0, 0, "ok"},
		{"rate limit", []ddsandbox.Fault{{Kind: ddsandbox.FaultRateLimit, Times: 2}}, false, 20, 0, 0, "rate_limit"},
		{"system error", []ddsandbox.Fault{{Kind: ddsandbox.FaultSystemError, Times: 1}}, false, 20, 0, 0, "system_error"},
		{"retryable order code", []ddsandbox.Fault{{Kind: ddsandbox.FaultOrderFail, Times: 1, OrderIDs: []string{"3", "4"}}}, false, 20, 0, 0, "ok"},
		{"permanent order code", []ddsandbox.Fault{{Kind: ddsandbox.FaultOrderFail, OrderIDs: []string{"3", "4"}, Code: "1206", Message: "订单不属于该商家"}}, false, 18, 2, 0, "ok"},
		{"5xx forever", []ddsandbox.Fault{{Kind: ddsandbox.FaultHTTP5xx}}, false, 0, 0, 20, "http_5xx"},
		{"subscription expired pauses", []ddsandbox.Fault{{Kind: ddsandbox.FaultExpired}}, true, 20, 0, 0, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, map[string]string{"DANGDANG_BATCH_WINDOW": "100ms"})
			for _, f := range tt.faults {
				f.Shop = appKey
				if err := h.sb.Inject(f); err != nil {
					t.Fatal(err)
				}
			}
			now := time.Now()
			var evs []schemas.StatusEvent
			for i := range 20 {
				evs = append(evs, event("dianwoda", "DD"+strconv.Itoa(i), schemas.StatusDelivered, now))
			}
			h.produce(evs...)
			stop := h.start()
			if tt.pause {
				// Paused: the first call and at least one probe were answered 176, and nothing was
				// reported meanwhile.
				eventually(t, 60*time.Second, "two 176 answers", func() bool { return h.sb.Stats().CallsByOutcome["expired"] >= 2 })
				if n := len(h.read("TOPIC_DANGDANG_RESULTS", 100*time.Millisecond, func([]kafka.Message) bool { return false })); n != 0 {
					t.Fatalf("%d results while the shop was paused, want none", n)
				}
				h.sb.ClearFaults()
			}
			res := results(t, h.read("TOPIC_DANGDANG_RESULTS", 60*time.Second, func(m []kafka.Message) bool { return len(m) >= 20 }))
			out := byOutcome(res)
			if len(res) != 20 || len(out[writeback.OutcomeAccepted]) != tt.accepted || len(out[writeback.OutcomeRejected]) != tt.rejected || len(out[writeback.OutcomeDeadLettered]) != tt.dead {
				t.Fatalf("%d results: accepted %d rejected %d dead %d; want %d/%d/%d", len(res),
					len(out[writeback.OutcomeAccepted]), len(out[writeback.OutcomeRejected]), len(out[writeback.OutcomeDeadLettered]), tt.accepted, tt.rejected, tt.dead)
			}
			for id := range out[writeback.OutcomeAccepted] {
				if o, ok := h.sb.Order(appKey, id); !ok || o.DistriStatus != 1 {
					t.Errorf("accepted order %s not delivered in the sandbox: %+v", id, o)
				}
			}
			for _, r := range out[writeback.OutcomeRejected] {
				if r.OrderOperCode != "1206" || r.OrderOperation == "" {
					t.Errorf("rejection without Dangdang's code and message: %+v", r)
				}
			}
			if tt.dead > 0 {
				dlq := h.read("TOPIC_STATUS_DLQ", 10*time.Second, func(m []kafka.Message) bool { return len(m) >= tt.dead })
				if len(dlq) != tt.dead || kafkaio.Header(dlq[0], schemas.HeaderDLQReason) != "dangdang_retries_exhausted" || kafkaio.Header(dlq[0], schemas.HeaderCEID) == "" {
					t.Errorf("dlq: %d records, first %+v", len(dlq), dlq)
				}
			}
			if st := h.sb.Stats(); st.CallsByOutcome[tt.wantCalls] == 0 {
				t.Errorf("sandbox never saw a %q call: %+v", tt.wantCalls, st.CallsByOutcome)
			}
			eventually(t, 10*time.Second, "offsets committed", func() bool { return h.committed() == 20 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A dispatcher stopped mid-batch (calls in flight when the grace period ends) and restarted still
// reports every order.
func TestStopMidBatchAndRestart(t *testing.T) {
	h := newHarness(t, map[string]string{"SHUTDOWN_GRACE": "200ms", "DANGDANG_TIMEOUT": "5s", "DANGDANG_BATCH_WINDOW": "200ms"})
	h.sb.Inject(ddsandbox.Fault{Kind: ddsandbox.FaultSlow, DelayMS: 3000})
	now := time.Now()
	var evs []schemas.StatusEvent
	for i := range 250 {
		evs = append(evs, event("dianwoda", "DD"+strconv.Itoa(700000+i), schemas.StatusDelivered, now))
	}
	h.produce(evs...)
	stop := h.start()
	// Wait until calls are in flight (held by the slow fault), then stop.
	time.Sleep(2 * time.Second)
	before := len(h.read("TOPIC_DANGDANG_RESULTS", 200*time.Millisecond, func([]kafka.Message) bool { return false }))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var committed int64
	eventually(t, 20*time.Second, "committed offsets readable", func() bool { committed = h.committed(); return committed >= 0 })
	if before != 0 || committed != 0 {
		t.Fatalf("before the stop: %d results, %d committed; the test wants the stop to hit calls in flight", before, committed)
	}
	h.sb.ClearFaults()
	stop = h.start()
	res := results(t, h.read("TOPIC_DANGDANG_RESULTS", 60*time.Second, func(m []kafka.Message) bool {
		return len(byOutcome(results(t, m))[writeback.OutcomeAccepted])+len(byOutcome(results(t, m))[writeback.OutcomeSkipped]) >= 250
	}))
	reported := map[string]bool{}
	for _, r := range res {
		if r.Outcome == writeback.OutcomeAccepted || (r.Outcome == writeback.OutcomeSkipped && r.Reason == writeback.SkipAlreadySent) {
			reported[r.DangdangOrderID] = true
		}
	}
	for i := range 250 {
		id := strconv.Itoa(700000 + i)
		if !reported[id] {
			t.Fatalf("order %s not reported after the restart", id)
		}
		if o, ok := h.sb.Order(appKey, id); !ok || o.DistriStatus != 1 {
			t.Fatalf("order %s not delivered in the sandbox", id)
		}
	}
	eventually(t, 10*time.Second, "offsets committed", func() bool { return h.committed() == 250 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// At shutdown, orders waiting for their window are flushed at once, recorded and committed
// within the grace period.
func TestShutdownFlushesPending(t *testing.T) {
	h := newHarness(t, map[string]string{"DANGDANG_BATCH_WINDOW": "1m", "SHUTDOWN_GRACE": "20s"})
	now := time.Now()
	var evs []schemas.StatusEvent
	for i := range 30 {
		evs = append(evs, event("dianwoda", "DD"+strconv.Itoa(800000+i), schemas.StatusDelivered, now))
	}
	h.produce(evs...)
	stop := h.start()
	// Every event has been fetched once its copy is on the delivery topic.
	if n := len(h.read("TOPIC_DELIVERY", 60*time.Second, func(m []kafka.Message) bool { return len(m) >= 30 })); n != 30 {
		t.Fatalf("%d copies", n)
	}
	if n := len(h.sb.Calls(appKey)); n != 0 {
		t.Fatalf("%d calls before the window ended", n)
	}
	began := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 15*time.Second {
		t.Errorf("stop took %s", took)
	}
	calls := h.sb.Calls(appKey)
	if len(calls) != 1 || len(calls[0].Orders) != 30 {
		t.Fatalf("calls = %+v, want one call of 30 at shutdown", calls)
	}
	res := results(t, h.read("TOPIC_DANGDANG_RESULTS", 10*time.Second, func(m []kafka.Message) bool { return len(m) >= 30 }))
	if len(byOutcome(res)[writeback.OutcomeAccepted]) != 30 {
		t.Fatalf("results = %d", len(res))
	}
	var committed int64
	eventually(t, 20*time.Second, "committed offsets readable", func() bool { committed = h.committed(); return committed >= 0 })
	if committed != 30 {
		t.Fatalf("committed %d, want 30", committed)
	}
}
