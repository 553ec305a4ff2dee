// Package chaos is the end-to-end proof of the pipeline: a workload that drives the ingress with
// a realistic mix of signed callbacks and remembers exactly which transitions were acknowledged
// (Drive, a fixed set of senders each waiting for its reply; DriveOpen, an open loop that sends
// at fixed offered rates whatever the replies do, for the system benchmark), a collector that
// reads every output topic while the run goes on (Collector), and a checker that holds the
// outputs against the ledger of acknowledgements and against the Dangdang sandbox's own log
// (Check). The scenarios that inject faults live in the e2e tests.
package chaos

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/orderpipe/pipeline/e2e/callbacks"
	"github.com/orderpipe/pipeline/e2e/loadgen"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/valyala/fasthttp"
)

// Transition is one real platform transition: what the checker expects exactly one distinct
// event_id for. It is what the platform said (its status and codes) and when it happened; the
// message id, the delivery attempt and the arrival time are not part of it.
type Transition struct {
	Platform       string
	OrderID        string
	Kind           string // delivery or order
	Type           string // Eleme push type; "" for Dianwoda
	PlatformStatus string
	Code           string // Dianwoda action_code, Eleme delivery subState
	OccurredMS     int64
	// DDDelivered marks the delivered transition of a Dangdang-routed order: it must end in a
	// Dangdang result.
	DDDelivered bool
}

// Key identifies the transition.
func (t *Transition) Key() string {
	return transitionKey(t.Platform, t.OrderID, t.Type, t.PlatformStatus, t.Code, t.OccurredMS)
}

func transitionKey(platform, order, typ, status, code string, ms int64) string {
	return platform + "|" + order + "|" + typ + "|" + status + "|" + code + "|" + strconv.FormatInt(ms, 10)
}

// Signer holds the secrets the workload signs with.
type Signer struct {
	DianwodaSecret string
	ElemeAppID     string
	ElemeSecret    string
}

// Mix says how often each kind of trouble appears (probabilities, 0..1).
type Mix struct {
	DDShare     float64 // share of Dianwoda orders that are Dangdang-routed (DD<digits>)
	Duplicate   float64 // after a callback is acknowledged, send the exact same bytes again
	Retry       float64 // … or the platform's retry: same msg_id/requestId, next deliver_times
	NewID       float64 // … or the same transition under a new msg_id/requestId
	OutOfOrder  float64 // per order: two adjacent steps sent in the wrong order
	UnknownCode float64 // per order: an extra transition with a status/code this version does not know
	Forged      float64 // per tick: a callback with a bad signature (must produce nothing)
	Malformed   float64 // per tick: a signed but unparsable body (must produce nothing)
	Poison      float64 // per tick: signed, accepted, but undecodable by the normalizer (must go to the DLQ)
}

// DefaultMix is the realistic mix of the scenarios.
var DefaultMix = Mix{DDShare: 0.3, Duplicate: 0.08, Retry: 0.05, NewID: 0.05, OutOfOrder: 0.15, UnknownCode: 0.15,
	Forged: 0.01, Malformed: 0.01, Poison: 0.005}

// Config configures Drive.
type Config struct {
	IngressURL string
	Signer     Signer
	Mix        Mix
	// Rate is new callbacks per second over all workers (retries are not paced).
	Rate float64
	// Duration is how long new orders are started; then the live orders finish their flows.
	Duration time.Duration
	// Drain bounds how long the live orders may take to finish after Duration (platforms keep
	// retrying what was not acknowledged, with backoff). Default 90 s.
	Drain   time.Duration
	Workers int
	// MaxInFlight caps DriveOpen's paced requests in flight (default DefaultMaxInFlight).
	MaxInFlight int
	Seed        uint64
	// RunID makes order ids unique to the run (digits only; default from the clock).
	RunID string
	// ElemeHold, when set, is Eleme keeping a push it could not deliver: after ElemeHoldAfter
	// (default 3) attempts of an Eleme callback that got no answer at all (the ingress is down),
	// the workload hands the body to it and stops retrying. The transition then counts as
	// acknowledged by the platform: the compensation poller must bring it to the pipeline.
	ElemeHold      func(ctx context.Context, body []byte) error
	ElemeHoldAfter int

	// IngressURLs, when set, replaces IngressURL: several ingress instances behind a load
	// balancer. Each sender spreads its requests over them round robin and, when one refuses the
	// connection (down), sends the same request to the next one at once, as a load balancer
	// would.
	IngressURLs []string
}

// platformRetry is how a platform retries a callback that was not acknowledged: 50 ms, doubling
// to 1 s, jittered.
var platformRetry = retry.Policy{Min: 50 * time.Millisecond, Max: time.Second}

// entry is one callback to send until acknowledged.
type entry struct {
	tr    *Transition // nil for poison
	class string      // flow, duplicate, retry, newid, poison
	make  func(attempt int) (path string, body []byte)
}

// TransState is what the ledger knows of one transition.
type TransState struct {
	T       Transition
	FirstAt time.Time // first attempt
	AckedAt time.Time // first success reply; zero if never acknowledged
	Acks    int
}

// Ledger is what the workload sent and what was acknowledged.
type Ledger struct {
	mu          sync.Mutex
	Trans       map[string]*TransState
	Orders      map[string][]string // "platform:order" → transition keys, in flow order
	PoisonAcked map[string]bool     // poison order ids acknowledged
	PoisonSent  map[string]bool
	// Counters by class.
	Sent, Acked            atomic.Int64 // callbacks (requests that got a reply or a network error), and success replies
	Forged, ForgedAccepted atomic.Int64
	Malformed, MalformedOK atomic.Int64
	NetErrors, Refused     atomic.Int64 // network errors; non-2xx replies to genuine callbacks (then retried)
	HeldByPlatform         atomic.Int64 // Eleme callbacks handed to Config.ElemeHold (delivered by pull)
	GaveUp                 atomic.Int64 // genuine callbacks never acknowledged within Drain
	// Offered counts the open-loop pacer's due times (DriveOpen); Late those that waited for the
	// cap on requests in flight before they could be sent.
	Offered, Late atomic.Int64
	Unexpected4xx atomic.Int64 // 4xx replies to genuine callbacks: a bug
	ByStatus      sync.Map     // int → *atomic.Int64
	// ReplyLatency holds the latency of every success reply (under mu).
	ReplyLatency []time.Duration
	// SendDelay holds, for every paced callback (DriveOpen), how long after its due time its
	// first attempt went out (under mu): the generator's own delay (waiting for a core, for a
	// sender goroutine, for the cap on requests in flight, building and signing the body), which
	// the reply latency, counted from the due time, includes.
	SendDelay         []time.Duration
	Started, Finished time.Time
}

func newLedger() *Ledger {
	return &Ledger{Trans: map[string]*TransState{}, Orders: map[string][]string{}, PoisonAcked: map[string]bool{}, PoisonSent: map[string]bool{}}
}

func (l *Ledger) status(code int) {
	v, _ := l.ByStatus.LoadOrStore(code, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// AckedBetween counts the transitions first acknowledged in [from, to).
func (l *Ledger) AckedBetween(from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ts := range l.Trans {
		if !ts.AckedAt.IsZero() && !ts.AckedAt.Before(from) && ts.AckedAt.Before(to) {
			n++
		}
	}
	return n
}

// ReplyQuantiles returns the p50 and p99 of the success replies' latency.
func (l *Ledger) ReplyQuantiles() (p50, p99 time.Duration) { return l.quantilesOf(&l.ReplyLatency) }

// SendDelayQuantiles returns the p50 and p99 of SendDelay.
func (l *Ledger) SendDelayQuantiles() (p50, p99 time.Duration) { return l.quantilesOf(&l.SendDelay) }

// quantilesOf returns the p50 and p99 of a copy of *d, one of the ledger's slices, taken under mu.
func (l *Ledger) quantilesOf(d *[]time.Duration) (p50, p99 time.Duration) {
	l.mu.Lock()
	c := slices.Clone(*d)
	l.mu.Unlock()
	p50, p99, _ = quantiles(c)
	return p50, p99
}

// Statuses returns the reply counts by HTTP status.
func (l *Ledger) Statuses() map[int]int64 {
	out := map[int]int64{}
	l.ByStatus.Range(func(k, v any) bool { out[k.(int)] = v.(*atomic.Int64).Load(); return true })
	return out
}

// Drive runs the workload against the ingress and returns the ledger. It returns when every
// started order has finished its flow or Drain has passed.
func Drive(ctx context.Context, c Config) *Ledger {
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.Drain <= 0 {
		c.Drain = 90 * time.Second
	}
	if c.Rate <= 0 {
		c.Rate = 100
	}
	if c.RunID == "" {
		c.RunID = strconv.FormatInt(time.Now().UnixNano()/1e6%1e7, 10)
	}
	if c.ElemeHoldAfter <= 0 {
		c.ElemeHoldAfter = 3
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if len(c.IngressURLs) == 0 {
		c.IngressURLs = []string{c.IngressURL}
	}
	l := newLedger()
	l.Started = time.Now()
	client := newClient(c.Workers)
	defer client.CloseIdleConnections()

	loadCtx, stopLoad := context.WithTimeout(ctx, c.Duration)
	defer stopLoad()
	drainCtx, stopDrain := context.WithTimeout(ctx, c.Duration+c.Drain)
	defer stopDrain()

	ticks := make(chan struct{}, c.Workers)
	go func() {
		interval := time.Duration(float64(time.Second) / c.Rate)
		start := time.Now()
		for n := int64(1); ; n++ {
			select {
			case <-loadCtx.Done():
				close(ticks)
				return
			case <-time.After(time.Until(start.Add(time.Duration(n) * interval))):
			}
			select {
			case ticks <- struct{}{}:
			case <-loadCtx.Done():
			}
		}
	}()

	var seq atomic.Int64
	var wg sync.WaitGroup
	for w := range c.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk := &worker{c: &c, l: l, client: client, rng: rand.New(rand.NewPCG(c.Seed, uint64(w))), seq: &seq, drain: drainCtx, next: w}
			wk.run(ticks)
		}()
	}
	wg.Wait()
	l.Finished = time.Now()
	return l
}

type liveOrder struct {
	entries []entry
	next    int
}

type worker struct {
	c      *Config
	l      *Ledger
	client *fasthttp.Client
	rng    *rand.Rand
	seq    *atomic.Int64
	drain  context.Context
	live   []*liveOrder
	next   int // the ingress instance of the next request (round robin)
}

func (w *worker) run(ticks <-chan struct{}) {
	const concurrent = 3
	rr := 0
	for {
		_, ok := <-ticks
		if !ok {
			break
		}
		m := w.c.Mix
		switch x := w.rng.Float64(); {
		case x < m.Forged:
			w.forged()
			continue
		case x < m.Forged+m.Malformed:
			w.malformed()
			continue
		case x < m.Forged+m.Malformed+m.Poison:
			w.send(w.poison(), time.Time{}, false)
			continue
		}
		for len(w.live) < concurrent {
			w.live = append(w.live, w.newOrder())
		}
		rr = (rr + 1) % len(w.live)
		if !w.step(rr) {
			return
		}
	}
	// Load is over: finish the live orders' flows, unpaced, as the platforms would.
	for len(w.live) > 0 {
		if !w.step(0) {
			return
		}
	}
}

// step sends the next entry of live order i; false when the drain deadline passed.
func (w *worker) step(i int) bool {
	o := w.live[i]
	if !w.send(o.entries[o.next], time.Time{}, false) {
		return false
	}
	o.next++
	if o.next >= len(o.entries) {
		w.live = append(w.live[:i], w.live[i+1:]...)
	}
	return true
}

// send posts e until it is acknowledged, retrying as a platform does; false if the drain deadline
// passed first. The success reply's latency is measured from due (the time the open-loop pacer
// meant it to be sent, so a late start or retries count against the pipeline), or from the
// successful attempt when due is zero (the closed-loop workers). For a paced callback (one of
// the open loop's due times, not the unpaced finish of a flow) the first attempt's delay after
// due is kept in Ledger.SendDelay.
func (w *worker) send(e entry, due time.Time, paced bool) bool {
	b := platformRetry.New()
	for attempt := 1; ; attempt++ {
		if w.drain.Err() != nil {
			w.l.GaveUp.Add(1)
			return false
		}
		path, body := e.make(attempt)
		sent := time.Now()
		first := paced && attempt == 1
		if e.tr != nil || first {
			w.l.mu.Lock()
			if e.tr != nil {
				if ts := w.l.Trans[e.tr.Key()]; ts.FirstAt.IsZero() {
					ts.FirstAt = sent
				}
			}
			if first {
				w.l.SendDelay = append(w.l.SendDelay, sent.Sub(due))
			}
			w.l.mu.Unlock()
		}
		status := w.post(path, body)
		w.l.Sent.Add(1)
		if status == http.StatusOK {
			now := time.Now()
			w.l.Acked.Add(1)
			w.l.mu.Lock()
			from := sent
			if !due.IsZero() {
				from = due
			}
			w.l.ReplyLatency = append(w.l.ReplyLatency, now.Sub(from))
			if e.tr != nil {
				ts := w.l.Trans[e.tr.Key()]
				if ts.AckedAt.IsZero() {
					ts.AckedAt = now
				}
				ts.Acks++
			} else {
				w.l.PoisonAcked[poisonID(body)] = true
			}
			w.l.mu.Unlock()
			return true
		}
		if status == 0 && e.tr != nil && e.tr.Platform == "eleme" && w.c.ElemeHold != nil && attempt >= max(w.c.ElemeHoldAfter, 1) {
			if err := w.c.ElemeHold(w.drain, body); err == nil {
				w.l.HeldByPlatform.Add(1)
				w.l.mu.Lock()
				if ts := w.l.Trans[e.tr.Key()]; ts.AckedAt.IsZero() {
					ts.AckedAt = time.Now()
				}
				w.l.Trans[e.tr.Key()].Acks++
				w.l.mu.Unlock()
				return true
			}
		}
		if status >= 400 && status < 500 {
			w.l.Unexpected4xx.Add(1)
		}
		w.l.Refused.Add(1)
		_ = retry.Sleep(w.drain, b.Next()) // a drain deadline ends the loop at its top
	}
}

// post sends one request to the next ingress instance; when that one is down (connection
// refused) it tries the others at once, as a load balancer does.
func (w *worker) post(path string, body []byte) int {
	urls := w.c.IngressURLs
	if len(urls) == 0 {
		urls = []string{w.c.IngressURL}
	}
	for range len(urls) {
		base := urls[w.next%len(urls)]
		w.next++
		status, refused := w.postTo(base, path, body)
		if !refused {
			return status
		}
	}
	return 0
}

func (w *worker) postTo(base, path string, body []byte) (status int, refused bool) {
	timeout := postTimeout
	if d, ok := w.drain.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if timeout <= 0 || w.drain.Err() != nil {
		return 0, false
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(base + path)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body)
	if err := w.client.DoTimeout(req, resp, timeout); err != nil {
		w.l.NetErrors.Add(1)
		return 0, errors.Is(err, syscall.ECONNREFUSED)
	}
	w.l.status(resp.StatusCode())
	return resp.StatusCode(), false
}

// postTimeout bounds one request (a platform's own timeout), as the drain deadline bounds them
// all.
const postTimeout = 10 * time.Second

// newClient is the HTTP client of the generator's requests, holding up to conns connections to
// each ingress. It is fasthttp's: net/http's client (a reader and a writer goroutine for each
// connection, and the channels between them and the caller) was about 60 % of the open-loop
// generator's CPU at 4,000 callbacks/s, 0.2 of the machine's two cores that the pipeline
// measured did not get. A request is written as given: no path normalizing (the Dianwoda
// signature's query is sent byte for byte) and no default User-Agent.
func newClient(conns int) *fasthttp.Client {
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	return &fasthttp.Client{
		// Its own dialer, so that a refused connection is the net error itself
		// (errors.Is(err, syscall.ECONNREFUSED)) and the next ingress instance is tried at once.
		Dial:                func(addr string) (net.Conn, error) { return dialer.Dial("tcp", addr) },
		MaxConnsPerHost:     conns,
		MaxConnWaitTimeout:  postTimeout,
		MaxIdleConnDuration: 30 * time.Second,
		// The connection used last goes next, as net/http's pool does: a few connections stay
		// hot instead of every one being woken in turn (fasthttp's default, FIFO, spread the
		// requests over all of them and cost the ingress more CPU per request).
		ConnPoolStrategy:         fasthttp.LIFO,
		DisablePathNormalizing:   true,
		NoDefaultUserAgentHeader: true,
	}
}

func (w *worker) id() int64 { return w.seq.Add(1) }

// newOrder plans one order: its flow, perhaps an unknown code inserted, perhaps two steps
// swapped, and copies (duplicates, retries, new ids) after some steps.
func (w *worker) newOrder() *liveOrder {
	n := w.id()
	base := time.Now().Add(-time.Minute).UnixMilli()
	base -= base % 1000
	var trs []*Transition
	var makers []func(tr *Transition, msgID string) func(int) (string, []byte)
	if n%2 == 0 {
		dd := w.rng.Float64() < w.c.Mix.DDShare
		id := fmt.Sprintf("DW%s%07d", w.c.RunID, n)
		if dd {
			id = fmt.Sprintf("DD%s%07d", w.c.RunID, n)
		}
		for i, st := range loadgen.DianwodaFlow {
			trs = append(trs, &Transition{Platform: "dianwoda", OrderID: id, Kind: "delivery", PlatformStatus: st[1], Code: st[0],
				OccurredMS: base + int64(i)*1500, DDDelivered: dd && st[1] == "completed"})
		}
		if w.rng.Float64() < w.c.Mix.UnknownCode {
			u := &Transition{Platform: "dianwoda", OrderID: id, Kind: "delivery", PlatformStatus: "rider_changed", Code: "rider_transfer_x",
				OccurredMS: base + 2*1500 + 700}
			trs = append(trs[:3], append([]*Transition{u}, trs[3:]...)...)
		}
		for range trs {
			makers = append(makers, w.dianwoda)
		}
	} else {
		id := fmt.Sprintf("3%s%011d", w.c.RunID, n)
		id = id[:min(len(id), 19)]
		shop := 968861 + n%50
		for i, st := range loadgen.ElemeFlow {
			tr := &Transition{Platform: "eleme", OrderID: id, Kind: st.Kind, Type: strconv.Itoa(st.Type), PlatformStatus: st.State,
				OccurredMS: base + int64(i)*1500}
			if st.Kind == "order" {
				tr.OccurredMS -= tr.OccurredMS % 1000 // updateTime is in seconds
			} else {
				tr.Code = "noSubstate"
			}
			trs = append(trs, tr)
		}
		if w.rng.Float64() < w.c.Mix.UnknownCode {
			u := &Transition{Platform: "eleme", OrderID: id, Kind: "delivery", Type: "77", PlatformStatus: "courierChanged", Code: "noSubstate",
				OccurredMS: base + 3*1500 + 700}
			trs = append(trs[:4], append([]*Transition{u}, trs[4:]...)...)
		}
		for range trs {
			makers = append(makers, func(tr *Transition, msgID string) func(int) (string, []byte) { return w.eleme(tr, msgID, shop) })
		}
	}
	w.l.mu.Lock()
	key := trs[0].Platform + ":" + trs[0].OrderID
	for _, tr := range trs {
		w.l.Trans[tr.Key()] = &TransState{T: *tr}
		w.l.Orders[key] = append(w.l.Orders[key], tr.Key())
	}
	w.l.mu.Unlock()

	order := make([]int, len(trs))
	for i := range order {
		order[i] = i
	}
	if w.rng.Float64() < w.c.Mix.OutOfOrder {
		i := w.rng.IntN(len(order) - 1)
		order[i], order[i+1] = order[i+1], order[i]
	}
	lo := &liveOrder{}
	m := w.c.Mix
	for _, i := range order {
		tr, mk := trs[i], makers[i]
		orig := mk(tr, w.msgID())
		lo.entries = append(lo.entries, entry{tr: tr, class: "flow", make: orig})
		switch x := w.rng.Float64(); {
		case x < m.Duplicate:
			lo.entries = append(lo.entries, entry{tr: tr, class: "duplicate", make: func(int) (string, []byte) { return orig(1) }})
		case x < m.Duplicate+m.Retry:
			lo.entries = append(lo.entries, entry{tr: tr, class: "retry", make: func(a int) (string, []byte) { return orig(a + 1) }})
		case x < m.Duplicate+m.Retry+m.NewID:
			lo.entries = append(lo.entries, entry{tr: tr, class: "newid", make: mk(tr, w.msgID())})
		}
	}
	return lo
}

func (w *worker) msgID() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(w.rng.UintN(256))
	}
	return hex.EncodeToString(b[:])
}

// dianwoda returns the callback maker of a Dianwoda transition under msgID: attempt n is sent
// with deliver_times n, as Dianwoda's retries are.
func (w *worker) dianwoda(tr *Transition, msgID string) func(int) (string, []byte) {
	secret := w.c.Signer.DianwodaSecret
	return func(attempt int) (string, []byte) {
		cb := callbacks.NewDianwoda(secret, callbacks.DianwodaContent{
			OrderOriginalID: tr.OrderID, OrderStatus: tr.PlatformStatus, ActionCode: tr.Code, ActionDetail: "状态变更",
			RiderCode: "10088", RiderName: "张德顺", RiderMobile: "13600000000", TimeStatusUpdate: tr.OccurredMS,
		}, msgID, attempt, tr.OccurredMS+int64(attempt)*10, strconv.Itoa(attempt))
		return "/v1/callbacks/dianwoda?" + cb.Query.Encode(), cb.Body
	}
}

// eleme returns the callback maker of an Eleme transition under requestId msgID: Eleme's retries
// are the same bytes.
func (w *worker) eleme(tr *Transition, msgID string, shop int64) func(int) (string, []byte) {
	var msg map[string]any
	if tr.Kind == "order" {
		msg = map[string]any{"orderId": tr.OrderID, "state": tr.PlatformStatus, "shopId": shop, "updateTime": tr.OccurredMS / 1000, "role": 3}
	} else {
		msg = map[string]any{"orderId": tr.OrderID, "state": tr.PlatformStatus, "subState": tr.Code, "shopId": shop,
			"name": "张三", "phone": "13600000000", "updateAt": tr.OccurredMS}
	}
	text, _ := json.Marshal(msg)
	typ, _ := strconv.Atoi(tr.Type)
	body := callbacks.Eleme{AppID: w.c.Signer.ElemeAppID, RequestID: msgID, Type: typ, Message: string(text),
		ShopID: strconv.FormatInt(shop, 10), Timestamp: tr.OccurredMS + 20, UserID: "100452735447201579"}.Body(w.c.Signer.ElemeSecret)
	return func(int) (string, []byte) { return "/v1/callbacks/eleme", body }
}

// Markers of the callbacks that must produce nothing downstream, and of the poison records.
const (
	ForgedPrefix    = "FORGED"
	MalformedPrefix = "MALF"
	PoisonPrefix    = "POISON"
)

// forged sends a well-formed callback signed with the wrong secret: it must get 401 and leave
// no trace.
func (w *worker) forged() {
	path, body := w.planForged()
	w.postFault(path, body, &w.l.Forged, &w.l.ForgedAccepted)
}

// postFault sends a callback that must be refused, counting it in total and, when it got a
// 2xx, in accepted.
func (w *worker) postFault(path string, body []byte, total, accepted *atomic.Int64) {
	total.Add(1)
	if st := w.post(path, body); st >= 200 && st < 300 {
		accepted.Add(1)
	}
}

// planForged builds a forged callback (it draws from w's randomness).
func (w *worker) planForged() (path string, body []byte) {
	id := fmt.Sprintf("%s%s%07d", ForgedPrefix, w.c.RunID, w.id())
	if w.rng.IntN(2) == 0 {
		cb := callbacks.NewDianwoda("not-the-secret", callbacks.DianwodaContent{OrderOriginalID: id, OrderStatus: "completed",
			ActionCode: "customer_sign", TimeStatusUpdate: time.Now().UnixMilli()}, w.msgID(), 1, time.Now().UnixMilli(), "1")
		path, body = "/v1/callbacks/dianwoda?"+cb.Query.Encode(), cb.Body
	} else {
		text, _ := json.Marshal(map[string]any{"orderId": id, "state": "completed", "subState": "noSubstate", "updateAt": time.Now().UnixMilli()})
		body = callbacks.Eleme{AppID: w.c.Signer.ElemeAppID, RequestID: w.msgID(), Type: 56, Message: string(text), ShopID: "968861",
			Timestamp: time.Now().UnixMilli(), UserID: "1"}.Body("not-the-secret")
		path = "/v1/callbacks/eleme"
	}
	return path, body
}

// malformed sends a correctly signed body that is not JSON: it must get 400 and leave no trace.
func (w *worker) malformed() {
	path, body := w.planMalformed()
	w.postFault(path, body, &w.l.Malformed, &w.l.MalformedOK)
}

// planMalformed builds a malformed callback (it draws from w's randomness).
func (w *worker) planMalformed() (path string, body []byte) {
	id := fmt.Sprintf("%s%s%07d", MalformedPrefix, w.c.RunID, w.id())
	if w.rng.IntN(2) == 0 {
		body = []byte(`{"content":{"order_original_id":"` + id + `","order_status":"completed"`)
		q := url.Values{"type": {callbacks.DianwodaType}, "timestamp": {"1700000000000"}, "nonce": {"7"}}
		q["sign"] = []string{callbacks.DianwodaSign(w.c.Signer.DianwodaSecret, q, body)}
		path = "/v1/callbacks/dianwoda?" + q.Encode()
	} else {
		body = []byte(`{"appId":` + w.c.Signer.ElemeAppID + `,"requestId":"` + id + `","type":56,"message":"{\"orderId\":\"` + id + `\"`)
		path = "/v1/callbacks/eleme"
	}
	return path, body
}

// poison is a signed Dianwoda status update the ingress accepts (it has an order id) but the
// normalizer cannot map (no order_status, no time): it must land in the raw DLQ, once per id.
func (w *worker) poison() entry {
	id := fmt.Sprintf("%s%s%07d", PoisonPrefix, w.c.RunID, w.id())
	msgID := w.msgID()
	w.l.mu.Lock()
	w.l.PoisonSent[id] = true
	w.l.mu.Unlock()
	return entry{class: "poison", make: func(attempt int) (string, []byte) {
		body, _ := json.Marshal(map[string]any{"content": map[string]any{"order_original_id": id, "action_code": "poison"},
			"deliver_times": attempt, "msg_id": msgID, "pub_time": time.Now().UnixMilli()})
		q := url.Values{"type": {callbacks.DianwodaType}, "timestamp": {strconv.FormatInt(time.Now().UnixMilli(), 10)}, "nonce": {strconv.Itoa(attempt)}}
		q["sign"] = []string{callbacks.DianwodaSign(w.c.Signer.DianwodaSecret, q, body)}
		return "/v1/callbacks/dianwoda?" + q.Encode(), body
	}}
}

// poisonID extracts the order id of a poison body.
func poisonID(body []byte) string {
	var v struct {
		Content struct {
			ID string `json:"order_original_id"`
		} `json:"content"`
	}
	_ = json.Unmarshal(body, &v)
	return v.Content.ID
}
