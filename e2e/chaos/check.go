package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/orderpipe/pipeline/schemas"
)

// SandboxCall is one call in the sandbox's log.
type SandboxCall struct {
	Seq     int      `json:"seq"`
	Shop    string   `json:"shop"`
	Orders  []string `json:"orders"`
	Outcome string   `json:"outcome"`
}

// SandboxOrder is the sandbox's state of one order.
type SandboxOrder struct {
	Shop         string `json:"shop"`
	OrderID      string `json:"order_id"`
	DistriStatus int    `json:"distri_status"`
	Accepted     int    `json:"accepted"`
	Rejected     int    `json:"rejected"`
}

// Sandbox reads the Dangdang sandbox's admin API.
type Sandbox struct{ URL string }

func (s Sandbox) get(ctx context.Context, path string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Orders returns the sandbox's orders.
func (s Sandbox) Orders(ctx context.Context) ([]SandboxOrder, error) {
	var orders []SandboxOrder
	err := s.get(ctx, "/sandbox/orders", &orders)
	return orders, err
}

// Fault arms a sandbox fault (see ddsandbox.Fault).
func (s Sandbox) Fault(ctx context.Context, f map[string]any) error {
	b, _ := json.Marshal(f)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/sandbox/faults", strings.NewReader(string(b)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("arm fault %s: %s", b, resp.Status)
	}
	return nil
}

// ClearFaults disarms every fault.
func (s Sandbox) ClearFaults(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, s.URL+"/sandbox/faults", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Report is the verdict of one scenario.
type Report struct {
	Scenario string
	Duration time.Duration
	// The workload.
	Sent, Acked, Statuses string
	Forged, Malformed     int64
	// Transitions: expected = acknowledged ones; seen = those with at least one event.
	Expected, Seen, Events int
	Lost, Duplicated       int
	// Redelivered is the number of extra copies of an event_id already on the topic (the same
	// event written twice: at-least-once after a crash between produce and commit, or after a
	// Redis flush forgot that it was emitted). Not a duplicate transition, but not hidden either.
	Redelivered int
	WrongFinal  int // orders whose latest non-stale event of a kind is not the flow's last transition
	Phantoms    int // events of no transition the workload sent
	Leaks       int // forged or malformed callbacks that left a trace (or were accepted)
	// Dangdang.
	DDOrders, DDMissing, DDCalls, DDCallsOver100, DDTwiceInCall, DDResent int
	// DDCallsOwn are the sandbox calls that carried at least one of this load's DDOrders.
	// DDCalls counts every call the sandbox took, a warm-up's before this load included.
	DDCallsOwn int
	// DLQ: poison acknowledged, poison found in the raw DLQ, other records in the DLQs.
	PoisonAcked, PoisonMissing, DLQOther int
	// Delays from the success reply to the first sight of the event / to Dangdang's acceptance
	// record.
	P50, P99, MaxDelay       time.Duration
	DDP50, DDP99, DDMaxDelay time.Duration
	// WrittenP50 and WrittenP99 are the delays from the success reply to the normalizer's
	// write of the first event (its record timestamp): the pipeline's part of P50 and P99,
	// without the collector's reading.
	WrittenP50, WrittenP99 time.Duration
	// FirstWritten is, by transition key, the record time of its first event on the status
	// topic (what WrittenP50 and WrittenP99 are measured to), for a finer look at the delays.
	FirstWritten map[string]time.Time
	Unacked      int // transitions sent but never acknowledged (the drain gave up)
	Details      []string
	// Cost names a check the scenario is known to cost (reported, not failed), e.g. the wrong
	// final states a Redis flush causes; set by the scenario.
	Cost string

	// OrderViolations counts, on the status topic and on every routed topic the collector read,
	// the non-stale events that come after a non-stale event of the same order and kind that
	// happened later (see OrderViolations); RoutedViolations is the routed topics' share.
	OrderViolations, RoutedViolations int
	// RoutedMissing counts status events that never reached a routed topic they are routed to
	// (set by CheckRouted).
	RoutedMissing int
	// Recovery is the time from the fault to both consumer groups' lag back to zero (set by the
	// scenario; 0 = not measured).
	Recovery time.Duration
	// MaxRSS is the largest resident set of each service during the scenario, in bytes.
	MaxRSS map[string]int64
}

// OK reports whether nothing was lost or duplicated and every check held.
func (r *Report) OK() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.WrongFinal == 0 && r.OrderViolations == 0 && r.RoutedMissing == 0 && r.Phantoms == 0 && r.Leaks == 0 && r.DDMissing == 0 &&
		r.DDCallsOver100 == 0 && r.DDTwiceInCall == 0 && r.PoisonMissing == 0 && r.DLQOther == 0 && r.Unacked == 0
}

func (r *Report) detail(format string, args ...any) {
	if len(r.Details) < 40 {
		r.Details = append(r.Details, fmt.Sprintf(format, args...))
	}
}

// Done reports whether everything acknowledged has arrived: an event for every acknowledged
// transition, a Dangdang result (or dead letter) for every acknowledged delivered DD order, and
// every acknowledged poison record in the DLQ.
func Done(l *Ledger, c *Collector) (bool, string) {
	seen := map[string]bool{}
	results := map[string]bool{}
	dlq := map[string]bool{}
	var statusDLQ []string
	c.with(func() {
		for _, s := range c.Status {
			seen[eventKey(s)] = true
		}
		for _, r := range c.Results {
			results[r.Key] = true
		}
		for _, d := range c.RawDLQ {
			dlq[d.OrderID] = true
		}
		statusDLQ = slices.Clone(c.StatusDLQ)
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	missing, ddMissing := 0, 0
	for k, ts := range l.Trans {
		if ts.AckedAt.IsZero() {
			continue
		}
		if !seen[k] {
			missing++
		}
		if ts.T.DDDelivered && !results[ddID(ts.T.OrderID)] && !inDLQ(statusDLQ, ts.T.OrderID) {
			ddMissing++
		}
	}
	poison := 0
	for id := range l.PoisonAcked {
		if !dlq[id] {
			poison++
		}
	}
	return missing+ddMissing+poison == 0, fmt.Sprintf("%d events, %d dangdang results, %d poison records still missing", missing, ddMissing, poison)
}

// Settle waits until Done, then until the topics have been quiet for quiet (so that late
// copies are counted too), or until timeout.
func Settle(ctx context.Context, l *Ledger, c *Collector, quiet, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, why := Done(l, c)
		if ok && c.Quiet() >= quiet {
			return true, why
		}
		select {
		case <-ctx.Done():
			return false, why
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ddID(orderID string) string { return strings.TrimPrefix(orderID, "DD") }

func inDLQ(recs []string, orderID string) bool {
	for _, r := range recs {
		if strings.Contains(r, orderID) {
			return true
		}
	}
	return false
}

func eventKey(s StatusRec) string {
	ev := s.Ev
	typ, code := "", ""
	if ev.Platform == "eleme" && ev.Source != nil {
		typ = ev.Source.Type
	}
	if ev.Reason != nil {
		code = ev.Reason.Code
	}
	return transitionKey(ev.Platform, ev.OrderID, typ, ev.PlatformStatus, code, ev.OccurredAt.UnixMilli())
}

// Check holds the collected outputs against the ledger and the sandbox.
func Check(ctx context.Context, scenario string, l *Ledger, c *Collector, sb Sandbox) *Report {
	r := &Report{Scenario: scenario, Duration: l.Finished.Sub(l.Started)}
	r.Sent, r.Acked = fmt.Sprint(l.Sent.Load()), fmt.Sprint(l.Acked.Load())
	r.Statuses = fmt.Sprint(l.Statuses())
	r.Forged, r.Malformed = l.Forged.Load(), l.Malformed.Load()
	if n := l.ForgedAccepted.Load() + l.MalformedOK.Load(); n > 0 {
		r.Leaks += int(n)
		r.detail("%d forged or malformed callbacks got a success reply", n)
	}
	if n := l.Unexpected4xx.Load(); n > 0 {
		r.detail("%d genuine callbacks got a 4xx reply (retried)", n)
	}

	var status []StatusRec
	var raw, rawDLQ []RawRec
	var results []ResultRec
	var statusDLQ []string
	c.with(func() {
		status, raw, rawDLQ, results, statusDLQ = slices.Clone(c.Status), slices.Clone(c.Raw), slices.Clone(c.RawDLQ), slices.Clone(c.Results), slices.Clone(c.StatusDLQ)
		for _, e := range c.DecodeErr {
			r.detail("undecodable record: %s", e)
		}
	})
	r.Events = len(status)

	l.mu.Lock()
	defer l.mu.Unlock()

	// Events by transition, copies by event_id, first sight per transition.
	ids := map[string]map[string]bool{}
	copies := map[string]int{}
	firstSeen, firstWritten := map[string]time.Time{}, map[string]time.Time{}
	for _, s := range status {
		k := eventKey(s)
		if ids[k] == nil {
			ids[k] = map[string]bool{}
		}
		ids[k][s.Ev.EventID] = true
		copies[s.Ev.EventID]++
		if t, ok := firstSeen[k]; !ok || s.SeenAt.Before(t) {
			firstSeen[k] = s.SeenAt
		}
		if t, ok := firstWritten[k]; !ok || s.WrittenAt.Before(t) {
			firstWritten[k] = s.WrittenAt
		}
		if _, ok := l.Trans[k]; !ok {
			r.Phantoms++
			r.detail("phantom event %s %s %s (%s)", s.Ev.EventID, s.Ev.Platform, s.Ev.OrderID, k)
		}
	}
	for id, n := range copies {
		if n > 1 {
			r.Redelivered += n - 1
			_ = id
		}
	}
	var delays, written []time.Duration
	for k, ts := range l.Trans {
		if ts.AckedAt.IsZero() {
			if !ts.FirstAt.IsZero() {
				r.Unacked++
				r.detail("transition %s sent but never acknowledged", k)
			}
			continue
		}
		r.Expected++
		n := len(ids[k])
		switch {
		case n == 0:
			r.Lost++
			r.detail("LOST %s (acknowledged %s)", k, ts.AckedAt.Format("15:04:05.000"))
		case n > 1:
			r.Duplicated++
			r.detail("DUPLICATED %s: %d distinct event ids", k, n)
		}
		if n > 0 {
			r.Seen++
			delays = append(delays, max(0, firstSeen[k].Sub(ts.AckedAt)))
			written = append(written, max(0, firstWritten[k].Sub(ts.AckedAt)))
		}
	}
	r.P50, r.P99, r.MaxDelay = quantiles(delays)
	r.WrittenP50, r.WrittenP99, _ = quantiles(written)
	r.FirstWritten = firstWritten

	// Final state: per order and kind, the latest non-stale event in topic order must be the
	// acknowledged transition that happened last.
	latest := map[string]StatusRec{}
	for _, s := range status { // per partition, in offset order; one order lives in one partition
		if s.Ev.Stale {
			continue
		}
		k := s.Ev.Platform + ":" + s.Ev.OrderID + "|" + s.Ev.Kind
		if prev, ok := latest[k]; !ok || prev.Partition != s.Partition || s.Offset > prev.Offset {
			latest[k] = s
		}
	}
	for order, keys := range l.Orders {
		want := map[string]*TransState{}
		for _, k := range keys {
			ts := l.Trans[k]
			if ts.AckedAt.IsZero() {
				continue
			}
			if w, ok := want[ts.T.Kind]; !ok || ts.T.OccurredMS > w.T.OccurredMS {
				want[ts.T.Kind] = ts
			}
		}
		for kind, w := range want {
			got, ok := latest[order+"|"+kind]
			if !ok || eventKey(got) != w.T.Key() {
				r.WrongFinal++
				r.detail("WRONG FINAL %s %s: latest non-stale %s, want %s", order, kind, eventKey(got), w.T.Key())
			}
		}
	}

	// Order: no non-stale event after a later one, on the status topic and each routed topic.
	n, det := OrderViolations(status)
	r.OrderViolations += n
	for _, d := range det {
		r.detail("ORDER status: %s", d)
	}
	c.with(func() {
		for topic, recs := range c.Routed {
			n, det := OrderViolations(recs)
			r.OrderViolations += n
			r.RoutedViolations += n
			for _, d := range det {
				r.detail("ORDER %s: %s", topic, d)
			}
		}
	})

	// Forged and malformed callbacks leave no trace.
	for _, s := range status {
		if strings.HasPrefix(s.Ev.OrderID, ForgedPrefix) || strings.HasPrefix(s.Ev.OrderID, MalformedPrefix) {
			r.Leaks++
			r.detail("event of a forged/malformed callback: %s", s.Ev.OrderID)
		}
	}
	for _, rr := range raw {
		if strings.HasPrefix(rr.OrderID, ForgedPrefix) || strings.Contains(string(rr.Body), ForgedPrefix) || strings.Contains(string(rr.Body), MalformedPrefix) {
			r.Leaks++
			r.detail("raw record of a forged/malformed callback: %s", rr.OrderID)
		}
	}

	// DLQs: the raw DLQ holds the poison records and nothing else; the status DLQ is empty.
	inRawDLQ := map[string]bool{}
	for _, d := range rawDLQ {
		if strings.HasPrefix(d.OrderID, PoisonPrefix) && l.PoisonSent[d.OrderID] {
			inRawDLQ[d.OrderID] = true
			continue
		}
		r.DLQOther++
		r.detail("unexpected raw DLQ record (%s): %.200s", d.Reason, d.Body)
	}
	r.PoisonAcked = len(l.PoisonAcked)
	for id := range l.PoisonAcked {
		if !inRawDLQ[id] {
			r.PoisonMissing++
			r.detail("poison %s acknowledged but not in the DLQ", id)
		}
	}
	ddDLQ := 0
	for _, d := range statusDLQ {
		if strings.Contains(d, "DD") {
			ddDLQ++
			r.detail("status DLQ: %.300s", d)
			continue
		}
		r.DLQOther++
		r.detail("unexpected status DLQ record: %.300s", d)
	}

	// Dangdang: every acknowledged delivered DD order has a result (or a dead letter) and the
	// sandbox holds it delivered; no call over 100 orders, no order twice in one call.
	firstResult := map[string]ResultRec{}
	for _, res := range results {
		if _, ok := firstResult[res.Key]; !ok {
			firstResult[res.Key] = res
		}
	}
	var calls []SandboxCall
	if err := sb.get(ctx, "/sandbox/calls", &calls); err != nil {
		r.detail("sandbox calls: %v", err)
		r.DDMissing++
	}
	var orders []SandboxOrder
	if err := sb.get(ctx, "/sandbox/orders", &orders); err != nil {
		r.detail("sandbox orders: %v", err)
		r.DDMissing++
	}
	sbOrder := map[string]SandboxOrder{}
	for _, o := range orders {
		sbOrder[o.OrderID] = o
		if o.Accepted > 1 {
			r.DDResent++
		}
	}
	r.DDCalls = len(calls)
	for _, call := range calls {
		if len(call.Orders) > 100 {
			r.DDCallsOver100++
			r.detail("dangdang call %d carried %d orders", call.Seq, len(call.Orders))
		}
		seen := map[string]bool{}
		for _, o := range call.Orders {
			if seen[o] {
				r.DDTwiceInCall++
				r.detail("dangdang call %d carried order %s twice", call.Seq, o)
			}
			seen[o] = true
		}
	}
	var ddDelays []time.Duration
	own := map[string]bool{} // this load's delivered Dangdang orders, for DDCallsOwn
	for _, ts := range l.Trans {
		if !ts.T.DDDelivered || ts.AckedAt.IsZero() {
			continue
		}
		r.DDOrders++
		id := ddID(ts.T.OrderID)
		own[id] = true
		res, ok := firstResult[id]
		switch {
		case ok && res.Outcome == "accepted":
			if o := sbOrder[id]; o.DistriStatus != 1 || o.Accepted < 1 {
				r.DDMissing++
				r.detail("dangdang order %s: result accepted but the sandbox holds %+v", id, o)
			}
			ddDelays = append(ddDelays, max(0, res.SeenAt.Sub(ts.AckedAt)))
		case ok:
			r.detail("dangdang order %s: outcome %s (%.200s)", id, res.Outcome, res.Raw)
		case inDLQ(statusDLQ, ts.T.OrderID):
		default:
			r.DDMissing++
			r.detail("dangdang order %s: no result, no dead letter", id)
		}
	}
	_ = ddDLQ
	for _, call := range calls {
		if slices.ContainsFunc(call.Orders, func(o string) bool { return own[o] }) {
			r.DDCallsOwn++
		}
	}
	r.DDP50, r.DDP99, r.DDMaxDelay = quantiles(ddDelays)
	slices.Sort(r.Details)
	return r
}

// OrderViolations counts the order violations among non-stale events in recs (one topic's
// records): per order and kind, in topic order (partition, then offset; one order lives in one
// partition), a non-stale event whose occurred_at is before that of a non-stale event already
// seen is a violation: a consumer that trusts the stale flag would move the order back. A copy
// of an event_id already seen is skipped (consumers dedup on event_id; copies are counted as
// redelivered), and so is every stale event.
func OrderViolations(recs []StatusRec) (int, []string) {
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b StatusRec) int {
		if a.Partition != b.Partition {
			return a.Partition - b.Partition
		}
		return int(a.Offset - b.Offset)
	})
	type last struct {
		at time.Time
		id string
	}
	latest := map[string]last{}
	seen := map[string]bool{}
	n := 0
	var details []string
	for _, s := range recs {
		if seen[s.Ev.EventID] {
			continue
		}
		seen[s.Ev.EventID] = true
		if s.Ev.Stale {
			continue
		}
		k := s.Ev.Platform + ":" + s.Ev.OrderID + "|" + s.Ev.Kind
		at := s.Ev.OccurredAt.Time
		if prev, ok := latest[k]; ok && at.Before(prev.at) {
			n++
			if len(details) < 10 {
				details = append(details, fmt.Sprintf("%s: non-stale %s (%s, occurred %s) after %s (occurred %s), partition %d offset %d",
					k, s.Ev.EventID, s.Ev.PlatformStatus, at.Format("15:04:05.000"), prev.id, prev.at.Format("15:04:05.000"), s.Partition, s.Offset))
			}
			continue
		}
		latest[k] = last{at: at, id: s.Ev.EventID}
	}
	return n, details
}

// CheckRouted adds to r the status events that never reached a routed topic: routeOf names the
// routed topics (among those the collector read) an event goes to; gone lists topics deleted on
// purpose, which are not checked.
func CheckRouted(r *Report, c *Collector, routeOf func(schemas.StatusEvent) []string, gone map[string]bool) {
	c.with(func() {
		on := map[string]map[string]bool{}
		for topic, recs := range c.Routed {
			on[topic] = map[string]bool{}
			for _, s := range recs {
				on[topic][s.Ev.EventID] = true
			}
		}
		done := map[string]bool{}
		for _, s := range c.Status {
			if done[s.Ev.EventID] {
				continue
			}
			done[s.Ev.EventID] = true
			for _, topic := range routeOf(s.Ev) {
				if gone[topic] || on[topic] == nil {
					continue
				}
				if !on[topic][s.Ev.EventID] {
					r.RoutedMissing++
					r.detail("ROUTED MISSING %s on %s (%s %s %s)", s.Ev.EventID, topic, s.Ev.Platform, s.Ev.OrderID, s.Ev.PlatformStatus)
				}
			}
		}
	})
	slices.Sort(r.Details)
}

func quantiles(d []time.Duration) (p50, p99, maxd time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	q := func(f float64) time.Duration {
		i := int(f*float64(len(d))+0.5) - 1
		return d[max(0, min(i, len(d)-1))]
	}
	return q(.5), q(.99), d[len(d)-1]
}

// TableHeader and Row render reports as a Markdown table.
const TableHeader = "| scenario | load | callbacks sent / acked | transitions expected / seen | events on topic | lost | duplicated | redelivered copies | wrong final state | DD orders / missing / calls | poison acked / in DLQ | p99 / max delay to event | p99 delay to DD acceptance | verdict |\n" +
	"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"

// Row is the report's table row.
func (r *Report) Row() string {
	verdict := "**ok**"
	if !r.OK() {
		verdict = "**FAIL**"
		if r.Cost != "" {
			verdict = "ok except the known cost: " + r.Cost
		}
	}
	return fmt.Sprintf("| %s | %s | %s / %s | %d / %d | %d | %d | %d | %d | %d | %d / %d / %d | %d / %d | %s / %s | %s | %s |\n",
		r.Scenario, r.Duration.Round(time.Second), r.Sent, r.Acked, r.Expected, r.Seen, r.Events, r.Lost, r.Duplicated, r.Redelivered,
		r.WrongFinal, r.DDOrders, r.DDMissing, r.DDCalls, r.PoisonAcked, r.PoisonAcked-r.PoisonMissing,
		r.P99.Round(time.Millisecond), r.MaxDelay.Round(time.Millisecond), r.DDP99.Round(time.Millisecond), verdict)
}

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: sent %s acked %s statuses %s forged %d malformed %d | transitions %d seen %d events %d | lost %d duplicated %d redelivered %d wrong-final %d phantoms %d leaks %d unacked %d | DD orders %d missing %d calls %d resent %d over100 %d twice %d | poison %d missing %d dlq-other %d | delay p50 %s p99 %s max %s | DD p50 %s p99 %s max %s",
		r.Scenario, r.Sent, r.Acked, r.Statuses, r.Forged, r.Malformed, r.Expected, r.Seen, r.Events, r.Lost, r.Duplicated, r.Redelivered,
		r.WrongFinal, r.Phantoms, r.Leaks, r.Unacked, r.DDOrders, r.DDMissing, r.DDCalls, r.DDResent, r.DDCallsOver100, r.DDTwiceInCall,
		r.PoisonAcked, r.PoisonMissing, r.DLQOther, r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.MaxDelay.Round(time.Millisecond),
		r.DDP50.Round(time.Millisecond), r.DDP99.Round(time.Millisecond), r.DDMaxDelay.Round(time.Millisecond))
	fmt.Fprintf(&b, " | order violations %d (routed topics %d) routed missing %d | recovery %s | max RSS %s",
		r.OrderViolations, r.RoutedViolations, r.RoutedMissing, recovery(r.Recovery), rss(r.MaxRSS))
	for _, d := range r.Details {
		b.WriteString("\n    " + d)
	}
	return b.String()
}

// TopoHeader and TopoRow render the production-topology reports (issue 13's columns).
const TopoHeader = "| scenario | load | callbacks acked | transitions expected / seen | lost | duplicated | redelivered copies | wrong final state | order violations (status + routed / routed) | DD orders / missing / twice in a call / calls over 100 | largest RSS (MiB) | fault → both groups' lag back | p99 reply → event | verdict |\n" +
	"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"

// TopoRow is the report's row in the topology table.
func (r *Report) TopoRow() string {
	verdict := "**ok**"
	if !r.OK() {
		verdict = "**FAIL**"
		if r.Cost != "" {
			verdict = "ok except the known cost: " + r.Cost
		}
	}
	return fmt.Sprintf("| %s | %s | %s | %d / %d | %d | %d | %d | %d | %d / %d | %d / %d / %d / %d | %s | %s | %s | %s |\n",
		r.Scenario, r.Duration.Round(time.Second), r.Acked, r.Expected, r.Seen, r.Lost, r.Duplicated, r.Redelivered, r.WrongFinal,
		r.OrderViolations, r.RoutedViolations, r.DDOrders, r.DDMissing, r.DDTwiceInCall, r.DDCallsOver100, rss(r.MaxRSS),
		recovery(r.Recovery), r.P99.Round(time.Millisecond), verdict)
}

func recovery(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < 0:
		return "never"
	}
	return d.Round(100 * time.Millisecond).String()
}

// rss renders the largest RSS per service, in MiB, in a fixed order.
func rss(m map[string]int64) string {
	if len(m) == 0 {
		return "–"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k]>>20)
	}
	return strings.Join(parts, ", ")
}
