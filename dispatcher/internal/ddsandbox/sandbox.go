// Package ddsandbox is a stand-in for Dangdang's dangdang.orders.distristatus.update endpoint, for
// `make run`, the tests and the benchmarks. It speaks the real wire format (signed query, GBK XML
// in a multipart file part, GBK XML answers), keeps per-order state, enforces Dangdang's transition
// rules (failure → success refused; success → failure only for shops so configured), and can be
// told to misbehave: 5xx answers, timeouts, slow answers, rate-limit answers, per-order failures,
// other system errors and error 176 (subscription expired).
//
// Everything it knows is readable through an admin API under /sandbox/ (see Handler) and through
// the Sandbox methods, so a test can check each order's final state and every call it received.
package ddsandbox

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/orderpipe/pipeline/dispatcher/internal/dangdang"
	"github.com/orderpipe/pipeline/plumbing/sandbox"
)

// Shop is a shop the sandbox knows.
type Shop struct {
	AppKey string `json:"app_key"`
	Secret string `json:"app_secret"`
	// Session, when set, must match the call's session.
	Session string `json:"session,omitempty"`
	// AllowSuccessToFailure lets the shop turn a delivered order into a failed one.
	AllowSuccessToFailure bool `json:"allow_success_to_failure,omitempty"`
}

// ParseShops reads "appkey=secret[,allow_success_to_failure][,session=S]" items separated by ";"
// or whitespace.
func ParseShops(spec string) ([]Shop, error) {
	var out []Shop
	for _, item := range strings.FieldsFunc(spec, func(r rune) bool { return r == ';' || r == ' ' || r == '\n' || r == '\t' }) {
		parts := strings.Split(item, ",")
		k, v, ok := strings.Cut(parts[0], "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("shop %q: want appkey=secret", item)
		}
		s := Shop{AppKey: k, Secret: v}
		for _, opt := range parts[1:] {
			switch {
			case opt == "allow_success_to_failure":
				s.AllowSuccessToFailure = true
			case strings.HasPrefix(opt, "session="):
				s.Session = strings.TrimPrefix(opt, "session=")
			default:
				return nil, fmt.Errorf("shop %q: unknown option %q", k, opt)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// Fault kinds.
const (
	FaultHTTP5xx     = sandbox.FaultHTTP5xx // answer Status (default 503) with a plain body
	FaultTimeout     = sandbox.FaultTimeout // hold the call until the client gives up (or DelayMS), apply nothing
	FaultSlow        = sandbox.FaultSlow    // wait DelayMS, then answer normally
	FaultRateLimit   = "rate_limit"         // errorResponse "SHOP访问API一分钟频次超限"
	FaultExpired     = "expired"            // errorResponse errorCode 176
	FaultSystemError = "system_error"       // <response><Error><operCode>Code</operCode>…
	FaultOrderFail   = "order_fail"         // orderOperCode Code (default 1208) for OrderIDs (all when empty)
)

// Fault is one injected misbehaviour. It applies to the shop's next Times calls (0: until cleared).
type Fault struct {
	Kind     string   `json:"kind"`
	Shop     string   `json:"shop,omitempty"`
	Times    int      `json:"times,omitempty"`
	DelayMS  int      `json:"delay_ms,omitempty"`
	Status   int      `json:"status,omitempty"`
	Code     string   `json:"code,omitempty"`
	Message  string   `json:"message,omitempty"`
	OrderIDs []string `json:"order_ids,omitempty"`
}

// Armable checks the fault for sandbox.FaultSet.
func (f Fault) Armable() (Fault, int, error) {
	err := sandbox.CheckFault(f.Kind, f.Times, f.DelayMS,
		FaultHTTP5xx, FaultTimeout, FaultSlow, FaultRateLimit, FaultExpired, FaultSystemError, FaultOrderFail)
	return f, f.Times, err
}

// Order is the sandbox's state of one order.
type Order struct {
	Shop         string    `json:"shop"`
	OrderID      string    `json:"order_id"`
	DistriStatus int       `json:"distri_status"`
	DistriTime   string    `json:"distri_time"`
	Accepted     int       `json:"accepted"` // updates accepted for this order
	Rejected     int       `json:"rejected"` // updates refused for this order
	UpdatedAt    time.Time `json:"updated_at"`
}

// Call is one request the endpoint received.
type Call struct {
	Seq     int       `json:"seq"`
	At      time.Time `json:"at"`
	Shop    string    `json:"shop"`
	Orders  []string  `json:"orders"`
	Outcome string    `json:"outcome"` // ok, bad_request, bad_sign, unknown_shop, too_many, or a fault kind
	// Traceparent is the call's W3C trace context header, as received ("" when none).
	Traceparent string `json:"traceparent,omitempty"`
}

// Stats are the sandbox's counters.
type Stats struct {
	sandbox.CallCounts
	OrdersAccepted int `json:"orders_accepted"`
	OrdersRejected int `json:"orders_rejected"`
}

// Sandbox is the fake endpoint. The zero value is not usable: use New.
//
// Its faults (Inject, Faults, ClearFaults) are a sandbox.FaultSet.
type Sandbox struct {
	sandbox.FaultSet[Fault]
	book   sandbox.Book[Call] // its lock guards orders and stats too
	shops  *sandbox.Credentials[Shop]
	orders map[string]*Order
	stats  Stats // orders accepted and rejected; the call counts are in book
	now    func() time.Time
}

// MaxCallLog bounds the call log.
const MaxCallLog = sandbox.MaxCallLog

// New returns a sandbox that knows shops.
func New(shops ...Shop) *Sandbox {
	return &Sandbox{shops: sandbox.NewCredentials(Shop.key, shops...), orders: map[string]*Order{}, now: time.Now}
}

func (sh Shop) key() string { return sh.AppKey }

// AddShop adds or replaces a shop.
func (s *Sandbox) AddShop(sh Shop) { s.shops.Add(sh) }

// Reset forgets orders, calls, counters and faults (shops stay).
func (s *Sandbox) Reset() {
	s.book.Reset(func() { s.orders, s.stats = map[string]*Order{}, Stats{} })
	s.ClearFaults()
}

func orderKey(shop, id string) string { return shop + "/" + id }

// Order returns one order's state.
func (s *Sandbox) Order(shop, id string) (Order, bool) {
	s.book.Lock()
	defer s.book.Unlock()
	o, ok := s.orders[orderKey(shop, id)]
	if !ok {
		return Order{}, false
	}
	return *o, true
}

// Orders returns the orders of shop (all shops when empty), sorted by shop and id.
func (s *Sandbox) Orders(shop string) []Order {
	s.book.Lock()
	out := make([]Order, 0, len(s.orders))
	for _, o := range s.orders {
		if shop == "" || o.Shop == shop {
			out = append(out, *o)
		}
	}
	s.book.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Shop != out[j].Shop {
			return out[i].Shop < out[j].Shop
		}
		return out[i].OrderID < out[j].OrderID
	})
	return out
}

// Calls returns the call log of shop (all when empty); never nil.
func (s *Sandbox) Calls(shop string) []Call {
	out := s.book.Calls(func(c Call) bool { return shop == "" || c.Shop == shop })
	for i := range out {
		out[i].Orders = append([]string(nil), out[i].Orders...)
	}
	return out
}

// Stats returns the counters.
func (s *Sandbox) Stats() Stats {
	return sandbox.Read(&s.book, func(c sandbox.CallCounts) Stats { st := s.stats; st.CallCounts = c; return st })
}

// call is the log entry of a call.
func (s *Sandbox) call(shop string, orders []string, outcome, traceparent string) func(seq int) Call {
	return func(seq int) Call {
		return Call{Seq: seq, At: s.now(), Shop: shop, Orders: orders, Outcome: outcome, Traceparent: traceparent}
	}
}

// record records a call, the lock held.
func (s *Sandbox) record(shop string, orders []string, outcome, traceparent string) {
	s.book.Record(outcome, s.call(shop, orders, outcome, traceparent))
}

// recordLocking records a call, taking the lock.
func (s *Sandbox) recordLocking(shop string, orders []string, outcome, traceparent string) {
	s.book.RecordLocking(outcome, s.call(shop, orders, outcome, traceparent))
}

type reqXML struct {
	Orders []struct {
		OrderID      string `xml:"orderID"`
		DistriStatus string `xml:"distriStatus"`
		DistriTime   string `xml:"distriTime"`
	} `xml:"OrdersList>OrderInfo"`
}

func writeXML(w http.ResponseWriter, status int, utf8 string) {
	body, err := dangdang.ToGBK([]byte(utf8))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=GBK")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func errorResponse(code, msg string) string {
	return `<?xml version="1.0" encoding="GBK"?>` + "\n<errorResponse><errorCode>" + xmlEscape(code) +
		"</errorCode><errorMessage>" + xmlEscape(msg) + "</errorMessage></errorResponse>\n"
}

func operError(code, msg string) string {
	return `<?xml version="1.0" encoding="GBK"?>` + "\n<response><functionID>" + dangdang.Method +
		"</functionID><Error><operCode>" + xmlEscape(code) + "</operCode><operation>" + xmlEscape(msg) +
		"</operation></Error></response>\n"
}

// Sandbox error codes for failures whose real codes are not documented (see README).
const (
	CodeBadSign     = "7"
	CodeUnknownShop = "8"
	CodeBadRequest  = "9"
	CodeRateLimit   = "10"
	CodeTooMany     = "2207"
	CodeBadOrderID  = "35"
	CodeForbidden   = "605"
	CodeOperFailed  = "1208"
)

// ServeAPI handles one distristatus.update call.
func (s *Sandbox) ServeAPI(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tp := r.Header.Get("traceparent")
	appKey := q.Get("app_key")
	shop, known := s.shops.Get(appKey)
	fail := func(outcome, code, msg string) {
		s.recordLocking(appKey, nil, outcome, tp)
		writeXML(w, http.StatusOK, errorResponse(code, msg))
	}
	if r.Method != http.MethodPost || q.Get("method") != dangdang.Method {
		fail("bad_request", CodeBadRequest, "只支持POST调用 "+dangdang.Method)
		return
	}
	if !known {
		fail("unknown_shop", CodeUnknownShop, "app_key不存在")
		return
	}
	params := map[string]string{}
	for _, k := range []string{"method", "app_key", "session", "format", "v", "sign_method", "timestamp"} {
		params[k] = q.Get(k)
	}
	want, err := dangdang.Sign(shop.Secret, params)
	if err != nil || !strings.EqualFold(want, q.Get("sign")) {
		fail("bad_sign", CodeBadSign, "签名错误")
		return
	}
	if shop.Session != "" && q.Get("session") != shop.Session {
		fail("bad_sign", CodeBadSign, "session错误")
		return
	}
	file, _, err := r.FormFile(dangdang.FilePart)
	if err != nil {
		fail("bad_request", CodeBadRequest, "缺少文件参数 "+dangdang.FilePart)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(file, 1<<20))
	file.Close()
	var doc reqXML
	if err == nil {
		d := xml.NewDecoder(bytes.NewReader(raw))
		d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
			b, err := io.ReadAll(in)
			if err != nil {
				return nil, err
			}
			u, err := dangdang.FromGBK(b)
			return bytes.NewReader(u), err
		}
		err = d.Decode(&doc)
	}
	if err != nil || len(doc.Orders) == 0 {
		fail("bad_request", CodeBadRequest, "XML文件格式错误")
		return
	}
	ids := make([]string, len(doc.Orders))
	for i, o := range doc.Orders {
		ids[i] = strings.TrimSpace(o.OrderID)
	}

	faults := s.TakeFaults(func(f Fault) bool { return f.Shop == "" || f.Shop == appKey })
	orderFail := map[string]Fault{}
	var failAll *Fault
	for _, f := range faults {
		delay, status := time.Duration(f.DelayMS)*time.Millisecond, cmp.Or(f.Status, http.StatusServiceUnavailable)
		if sandbox.ActTransport(w, r, f.Kind, delay, status, func() { s.recordLocking(appKey, ids, f.Kind, tp) }) {
			return
		}
		switch f.Kind {
		case FaultRateLimit:
			s.recordLocking(appKey, ids, f.Kind, tp)
			writeXML(w, http.StatusOK, errorResponse(CodeRateLimit, "SHOP访问API一分钟频次超限"))
			return
		case FaultExpired:
			s.recordLocking(appKey, ids, f.Kind, tp)
			writeXML(w, http.StatusOK, errorResponse(dangdang.SubscriptionExpiredCode, "APP与SHOP订购关系过期"))
			return
		case FaultSystemError:
			code, msg := f.Code, f.Message
			if code == "" {
				code, msg = CodeOperFailed, "系统繁忙"
			}
			s.recordLocking(appKey, ids, f.Kind, tp)
			writeXML(w, http.StatusOK, operError(code, msg))
			return
		case FaultOrderFail:
			if len(f.OrderIDs) == 0 {
				f := f
				failAll = &f
			}
			for _, id := range f.OrderIDs {
				orderFail[id] = f
			}
		}
	}
	if len(doc.Orders) > dangdang.MaxOrders {
		s.recordLocking(appKey, ids, "too_many", tp)
		writeXML(w, http.StatusOK, operError(CodeTooMany, "orderId超过100个"))
		return
	}

	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="GBK" standalone="yes"?>` + "\n<response>\n<functionID>" + dangdang.Method +
		"</functionID>\n<time>" + dangdang.BeijingTime(s.now()) + "</time>\n<Result>\n<OrdersList>\n")
	s.book.Lock()
	for i, o := range doc.Orders {
		id := ids[i]
		code, msg := s.applyLocked(shop, id, strings.TrimSpace(o.DistriStatus), strings.TrimSpace(o.DistriTime), orderFail, failAll)
		b.WriteString("<OrderInfo><orderID>" + xmlEscape(id) + "</orderID><orderOperCode>" + code +
			"</orderOperCode><orderOperation>" + xmlEscape(msg) + "</orderOperation></OrderInfo>\n")
	}
	s.record(appKey, ids, "ok", tp)
	s.book.Unlock()
	b.WriteString("</OrdersList>\n</Result>\n</response>\n")
	writeXML(w, http.StatusOK, b.String())
}

func (s *Sandbox) applyLocked(shop Shop, id, status, at string, orderFail map[string]Fault, failAll *Fault) (code, msg string) {
	o := s.orders[orderKey(shop.AppKey, id)]
	reject := func(c, m string) (string, string) {
		s.stats.OrdersRejected++
		if o != nil {
			o.Rejected++
		}
		return c, m
	}
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return reject(CodeBadOrderID, "订单ID错误")
	}
	if o == nil {
		// Every well-formed id is a shipped, self-delivered order of the shop.
		o = &Order{Shop: shop.AppKey, OrderID: id}
		s.orders[orderKey(shop.AppKey, id)] = o
	}
	f, failed := orderFail[id]
	if !failed && failAll != nil {
		f, failed = *failAll, true
	}
	if failed {
		c, m := f.Code, f.Message
		if c == "" {
			c, m = CodeOperFailed, "操作失败"
		}
		return reject(c, m)
	}
	var st int
	switch status {
	case "1":
		st = dangdang.DistriDelivered
	case "2":
		st = dangdang.DistriFailed
	default:
		return reject("51", "配送状态错误")
	}
	if o.DistriStatus == dangdang.DistriFailed && st == dangdang.DistriDelivered {
		return reject(CodeForbidden, "配送失败的订单不能标记为配送成功")
	}
	if o.DistriStatus == dangdang.DistriDelivered && st == dangdang.DistriFailed && !shop.AllowSuccessToFailure {
		return reject(CodeForbidden, "该商家不允许将配送成功改为配送失败")
	}
	o.DistriStatus, o.DistriTime, o.UpdatedAt = st, at, s.now()
	o.Accepted++
	s.stats.OrdersAccepted++
	return "0", "操作成功!"
}
