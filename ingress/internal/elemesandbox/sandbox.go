// Package elemesandbox is a stand-in for Eleme's OpenAPI gateway as far as push compensation
// goes (eleme.msgNew.getPushFailMsg and eleme.msgNew.confirmPullMsg), for `make run`, the tests
// and the chaos suite. It is strict about the request protocol of internal/elemeapi (POST
// /api/v1, nop 1.0.0, the SDKs' id form, metas app_key and timestamp, the MD5 signature over
// action, token, the sorted key=json(value) pairs and the secret, an empty token for these
// app-level calls) and answers in Eleme's envelope ({"id","result","error"}, HTTP 200, error codes
// of the SDKs). Where the public sources leave the protocol open it follows the readings of
// elemeapi/open.go.
//
// Tests load the pushes that "failed" through the admin API (POST /sandbox/held) and read back
// what was pulled and confirmed; faults make it misbehave: HTTP 5xx, timeouts, slow answers,
// EXCEED_LIMIT and other error codes, and confirms that fail, answer false, or are applied but
// whose answer is lost.
package elemesandbox

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/orderpipe/pipeline/ingress/internal/callback"
	"github.com/orderpipe/pipeline/ingress/internal/elemeapi"
	"github.com/orderpipe/pipeline/plumbing/sandbox"
)

// App is an application the sandbox knows.
type App struct {
	AppID  string `json:"app_id"`
	AppKey string `json:"app_key"`
	Secret string `json:"secret"`
}

// ParseApps reads "appId=appKey:secret" items separated by "," ";" or whitespace.
func ParseApps(spec string) ([]App, error) {
	var out []App
	for _, item := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\t' }) {
		id, rest, ok := strings.Cut(item, "=")
		key, secret, ok2 := strings.Cut(rest, ":")
		if !ok || !ok2 || id == "" || key == "" || secret == "" {
			return nil, fmt.Errorf("app item %d: want appId=appKey:secret", len(out)+1)
		}
		out = append(out, App{AppID: id, AppKey: key, Secret: secret})
	}
	return out, nil
}

// Fault kinds.
const (
	FaultHTTP5xx      = sandbox.FaultHTTP5xx // answer Status (default 502) with a plain body
	FaultTimeout      = sandbox.FaultTimeout // hold the call until the client gives up (or DelayMS), apply nothing
	FaultSlow         = sandbox.FaultSlow    // wait DelayMS, then answer normally
	FaultExceedLimit  = "exceed_limit"       // error EXCEED_LIMIT
	FaultError        = "error"              // error Code (default SERVER_ERROR) with Message
	FaultConfirmFail  = "confirm_fail"       // confirmPullMsg answers SERVER_ERROR and confirms nothing
	FaultConfirmFalse = "confirm_false"      // confirmPullMsg answers result false and confirms nothing
	FaultConfirmLost  = "confirm_lost"       // confirmPullMsg confirms, then the answer is lost (HTTP 504)
)

// Fault is one injected misbehaviour for the next Times calls (0: until cleared) of Action
// ("" any) of App ("" any).
type Fault struct {
	Kind    string `json:"kind"`
	Action  string `json:"action,omitempty"`
	App     string `json:"app,omitempty"`
	Times   int    `json:"times,omitempty"`
	DelayMS int    `json:"delay_ms,omitempty"`
	Status  int    `json:"status,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Armable checks the fault for sandbox.FaultSet.
// A confirm fault is armed for confirmPullMsg, whatever action it names.
func (f Fault) Armable() (Fault, int, error) {
	switch f.Kind {
	case FaultConfirmFail, FaultConfirmFalse, FaultConfirmLost:
		f.Action = elemeapi.ActionConfirmPullMsg
	}
	err := sandbox.CheckFault(f.Kind, f.Times, f.DelayMS, FaultHTTP5xx, FaultTimeout, FaultSlow, FaultExceedLimit, FaultError,
		FaultConfirmFail, FaultConfirmFalse, FaultConfirmLost)
	return f, f.Times, err
}

// Held is one failed push the sandbox holds for its app until it is confirmed.
type Held struct {
	MsgID   string          `json:"msg_id"`
	AppID   string          `json:"app_id"`
	OrderID string          `json:"order_id,omitempty"`
	Message json.RawMessage `json:"message"` // the item getPushFailMsg returns
	Pulled  int             `json:"pulled"`  // how often it was returned
	HeldAt  time.Time       `json:"held_at"`
}

// Confirm is one confirmPullMsg call that reached the sandbox.
type Confirm struct {
	Seq     int       `json:"seq"`
	At      time.Time `json:"at"`
	AppID   string    `json:"app_id"`
	MsgIDs  []string  `json:"msg_ids"`
	Outcome string    `json:"outcome"` // ok, or the fault kind
}

// Call is one request the gateway received.
type Call struct {
	Seq     int       `json:"seq"`
	At      time.Time `json:"at"`
	Action  string    `json:"action"`
	AppKey  string    `json:"app_key"`
	Outcome string    `json:"outcome"` // ok, an error code, or a fault kind
	Count   int       `json:"count"`   // messages returned or confirmed
}

// Stats are the sandbox's counters.
type Stats struct {
	sandbox.CallCounts
	Held      int `json:"held"`
	Pulled    int `json:"pulled"`    // messages returned, counting repeats
	Confirmed int `json:"confirmed"` // messages confirmed (removed)
}

// Sandbox is the fake gateway. Use New.
//
// Its faults (Inject, Faults, ClearFaults) are a sandbox.FaultSet.
type Sandbox struct {
	sandbox.FaultSet[Fault]
	book     sandbox.Book[Call] // its lock guards the rest too
	apps     *sandbox.Credentials[App]
	held     []*Held
	confirms []Confirm
	nextMsg  int64
	stats    Stats // held, pulled, confirmed; the call counts are in book
	now      func() time.Time
	// MaxSkew is how far metas.timestamp may be from the sandbox's clock; default 10 min.
	MaxSkew time.Duration
}

// New returns a sandbox knowing apps.
func New(apps ...App) *Sandbox {
	return &Sandbox{apps: sandbox.NewCredentials(func(a App) string { return a.AppKey }, apps...),
		now: time.Now, nextMsg: 9_000_000_000_000_000_000, MaxSkew: 10 * time.Minute}
}

// AddApp adds or replaces an app.
func (s *Sandbox) AddApp(a App) { s.apps.Add(a) }

// Reset forgets held messages, confirms, calls, counters and faults (apps stay).
func (s *Sandbox) Reset() {
	s.book.Reset(func() { s.held, s.confirms, s.stats = nil, nil, Stats{} })
	s.ClearFaults()
}

// Hold adds failed pushes of appID. Each item is a push body as Eleme would have POSTed it
// (its signature, if any, is dropped) or a message in getPushFailMsg's form; a message without
// msgId gets one. It returns the msgIds in order.
func (s *Sandbox) Hold(appID string, items ...json.RawMessage) ([]string, error) {
	s.book.Lock()
	defer s.book.Unlock()
	ids := make([]string, 0, len(items))
	var add []*Held
	for i, it := range items {
		obj, err := callback.Object(it)
		if err != nil {
			return nil, fmt.Errorf("item %d: %v", i, err)
		}
		if _, ok := obj["message"]; !ok {
			return nil, fmt.Errorf("item %d: no message", i)
		}
		delete(obj, "signature")
		if _, ok := obj["appId"]; !ok && appID != "" {
			obj["appId"] = json.RawMessage(strconv.Quote(appID))
			if strings.Trim(appID, "0123456789") == "" {
				obj["appId"] = json.RawMessage(appID)
			}
		}
		app := appID
		if app == "" {
			app, _ = callback.Text(obj["appId"])
		}
		id, _ := callback.Text(obj["msgId"])
		if id == "" {
			s.nextMsg++
			id = strconv.FormatInt(s.nextMsg, 10)
			obj["msgId"] = json.RawMessage(strconv.Quote(id))
		}
		h := &Held{MsgID: id, AppID: app, HeldAt: s.now()}
		if msg, ok := callback.Text(obj["message"]); ok {
			if m, err := callback.Object([]byte(msg)); err == nil {
				h.OrderID, _ = callback.Text(m["orderId"])
				if _, ok := obj["orderId"]; !ok && h.OrderID != "" {
					obj["orderId"] = json.RawMessage(strconv.Quote(h.OrderID))
				}
			}
		}
		h.Message = encodeObject(obj)
		add = append(add, h)
		ids = append(ids, id)
	}
	s.held = append(s.held, add...)
	s.stats.Held += len(add)
	return ids, nil
}

// encodeObject writes the members in a stable order (msgId, appId, requestId, type, message,
// shopId, userId, timestamp, orderId, then the rest sorted).
func encodeObject(obj map[string]json.RawMessage) json.RawMessage {
	order := []string{"msgId", "appId", "requestId", "type", "message", "shopId", "userId", "timestamp", "orderId"}
	seen := map[string]bool{}
	var b bytes.Buffer
	b.WriteByte('{')
	write := func(k string) {
		v, ok := obj[k]
		if !ok || seen[k] {
			return
		}
		seen[k] = true
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(k))
		b.WriteByte(':')
		_ = json.Compact(&b, v)
	}
	for _, k := range order {
		write(k)
	}
	rest := make([]string, 0, len(obj))
	for k := range obj {
		rest = append(rest, k)
	}
	sortStrings(rest)
	for _, k := range rest {
		write(k)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func sortStrings(a []string) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// HeldMessages returns the messages still held for appID ("" all).
func (s *Sandbox) HeldMessages(appID string) []Held {
	s.book.Lock()
	defer s.book.Unlock()
	out := []Held{}
	for _, h := range s.held {
		if appID == "" || h.AppID == appID {
			out = append(out, *h)
		}
	}
	return out
}

// Confirms returns the confirm log.
func (s *Sandbox) Confirms() []Confirm {
	s.book.Lock()
	defer s.book.Unlock()
	out := make([]Confirm, len(s.confirms))
	copy(out, s.confirms)
	return out
}

// Calls returns the call log.
func (s *Sandbox) Calls() []Call {
	return s.book.Calls(nil)
}

// Stats returns the counters.
func (s *Sandbox) Stats() Stats {
	return sandbox.Read(&s.book, func(c sandbox.CallCounts) Stats {
		st := s.stats
		st.CallCounts = c
		return st
	})
}

// MaxCallLog bounds the call and confirm logs.
const MaxCallLog = sandbox.MaxCallLog

func (s *Sandbox) recordLocked(action, appKey, outcome string, count int) {
	s.book.Record(outcome, func(seq int) Call {
		return Call{Seq: seq, At: s.now(), Action: action, AppKey: appKey, Outcome: outcome, Count: count}
	})
}

var requestID = regexp.MustCompile(`^[0-9A-F]{32}\|[0-9]{13}$`)

type wireRequest struct {
	NOP       *string                    `json:"nop"`
	ID        *string                    `json:"id"`
	Action    *string                    `json:"action"`
	Token     *string                    `json:"token"`
	Metas     *wireMetas                 `json:"metas"`
	Params    map[string]json.RawMessage `json:"params"`
	Signature *string                    `json:"signature"`
}

type wireMetas struct {
	AppKey    *string `json:"app_key"`
	Timestamp *int64  `json:"timestamp"`
}

func answer(w http.ResponseWriter, id string, result any, apiErr *elemeapi.APIError) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	body := map[string]any{"id": id, "result": result, "error": apiErr}
	_ = json.NewEncoder(w).Encode(body)
}

// ServeAPI handles one OpenAPI call.
func (s *Sandbox) ServeAPI(w http.ResponseWriter, r *http.Request) {
	var req wireRequest
	fail := func(action, appKey, id, code, msg string) {
		s.book.Lock()
		s.recordLocked(action, appKey, code, 0)
		s.book.Unlock()
		answer(w, id, nil, &elemeapi.APIError{Code: code, Message: msg})
	}
	if r.Method != http.MethodPost {
		fail("", "", "", elemeapi.CodeIllegalRequest, "only POST")
		return
	}
	raw, err := readAll(r)
	if err != nil || json.Unmarshal(raw, &req) != nil {
		fail("", "", "", elemeapi.CodeIllegalRequest, "请求体不是合法的JSON")
		return
	}
	id := deref(req.ID)
	action := deref(req.Action)
	if req.NOP == nil || *req.NOP != elemeapi.NOP || !requestID.MatchString(id) || action == "" ||
		req.Token == nil || req.Metas == nil || req.Metas.AppKey == nil || req.Metas.Timestamp == nil ||
		req.Params == nil || req.Signature == nil {
		fail(action, "", id, elemeapi.CodeIllegalRequest, "缺少协议字段 (nop, id, action, token, metas.app_key, metas.timestamp, params, signature)")
		return
	}
	appKey := *req.Metas.AppKey
	app, known := s.apps.Get(appKey)
	if !known {
		fail(action, appKey, id, elemeapi.CodeUnauthorized, "app_key不存在")
		return
	}
	metas := elemeapi.Metas{AppKey: appKey, Timestamp: *req.Metas.Timestamp}
	want, err := elemeapi.Sign(action, *req.Token, metas, req.Params, app.Secret)
	if err != nil || !strings.EqualFold(want, *req.Signature) {
		fail(action, appKey, id, elemeapi.CodeInvalidSignature, "签名错误")
		return
	}
	if skew := s.now().Sub(time.Unix(metas.Timestamp, 0)); skew > s.MaxSkew || skew < -s.MaxSkew {
		fail(action, appKey, id, elemeapi.CodeInvalidTimestamp, "timestamp超出允许范围")
		return
	}

	faults := s.TakeFaults(func(f Fault) bool {
		return (f.Action == "" || f.Action == action) && (f.App == "" || f.App == app.AppID)
	})
	var confirmFault string
	for _, f := range faults {
		delay, status := time.Duration(f.DelayMS)*time.Millisecond, cmp.Or(f.Status, http.StatusBadGateway)
		record := func() {
			s.book.Lock()
			s.recordLocked(action, appKey, f.Kind, 0)
			s.book.Unlock()
		}
		if sandbox.ActTransport(w, r, f.Kind, delay, status, record) {
			return
		}
		switch f.Kind {
		case FaultExceedLimit:
			fail(action, appKey, id, elemeapi.CodeExceedLimit, "接口调用超过限制")
			return
		case FaultError:
			code, msg := f.Code, f.Message
			if code == "" {
				code, msg = elemeapi.CodeServerError, "服务器内部错误"
			}
			fail(action, appKey, id, code, msg)
			return
		case FaultConfirmFail, FaultConfirmFalse, FaultConfirmLost:
			confirmFault = f.Kind
		}
	}

	switch action {
	case elemeapi.ActionGetPushFailMsg, elemeapi.ActionConfirmPullMsg:
	default:
		fail(action, appKey, id, elemeapi.CodeMethodNotAllowed, "该应用无权调用此接口")
		return
	}
	if *req.Token != "" {
		fail(action, appKey, id, elemeapi.CodeValidationFailed, "token 必须为空")
		return
	}
	if action == elemeapi.ActionGetPushFailMsg {
		s.getPushFailMsg(w, id, app, req.Params)
		return
	}
	s.confirmPullMsg(w, id, app, req.Params, confirmFault)
}

func (s *Sandbox) getPushFailMsg(w http.ResponseWriter, id string, app App, params map[string]json.RawMessage) {
	var q struct {
		AppID    json.RawMessage `json:"appId"`
		PageSize *int            `json:"pageSize"`
	}
	if err := json.Unmarshal(params[elemeapi.ParamQuery], &q); err != nil || len(q.AppID) == 0 {
		s.failLocked(w, elemeapi.ActionGetPushFailMsg, app.AppKey, id, elemeapi.CodeValidationFailed, "msgQueryRequest.appId 不能为空")
		return
	}
	if got, _ := callback.Text(q.AppID); got != app.AppID {
		s.failLocked(w, elemeapi.ActionGetPushFailMsg, app.AppKey, id, elemeapi.CodePermissionDenied, "appId与app_key不匹配")
		return
	}
	size := elemeapi.DefaultPageSize
	if q.PageSize != nil {
		size = *q.PageSize
	}
	if size < 1 || size > elemeapi.MaxPageSize {
		s.failLocked(w, elemeapi.ActionGetPushFailMsg, app.AppKey, id, elemeapi.CodeValidationFailed, "pageSize 超出范围")
		return
	}
	s.book.Lock()
	out := []json.RawMessage{}
	for _, h := range s.held {
		if h.AppID != app.AppID {
			continue
		}
		if len(out) == size {
			break
		}
		h.Pulled++
		s.stats.Pulled++
		out = append(out, h.Message)
	}
	s.recordLocked(elemeapi.ActionGetPushFailMsg, app.AppKey, "ok", len(out))
	s.book.Unlock()
	answer(w, id, out, nil)
}

func (s *Sandbox) confirmPullMsg(w http.ResponseWriter, id string, app App, params map[string]json.RawMessage, fault string) {
	var q struct {
		AppID  json.RawMessage   `json:"appId"`
		MsgIDs []json.RawMessage `json:"msgIds"`
	}
	if err := json.Unmarshal(params[elemeapi.ParamConfirm], &q); err != nil || len(q.AppID) == 0 || len(q.MsgIDs) == 0 {
		s.failLocked(w, elemeapi.ActionConfirmPullMsg, app.AppKey, id, elemeapi.CodeValidationFailed, "msgConfirmRequest.appId 和 msgIds 不能为空")
		return
	}
	if got, _ := callback.Text(q.AppID); got != app.AppID {
		s.failLocked(w, elemeapi.ActionConfirmPullMsg, app.AppKey, id, elemeapi.CodePermissionDenied, "appId与app_key不匹配")
		return
	}
	ids := make([]string, 0, len(q.MsgIDs))
	for _, raw := range q.MsgIDs {
		t, ok := callback.Text(raw)
		if !ok {
			s.failLocked(w, elemeapi.ActionConfirmPullMsg, app.AppKey, id, elemeapi.CodeValidationFailed, "msgIds 格式错误")
			return
		}
		ids = append(ids, t)
	}
	s.book.Lock()
	outcome := "ok"
	if fault != "" {
		outcome = fault
	}
	n := 0
	if fault == "" || fault == FaultConfirmLost {
		want := map[string]bool{}
		for _, m := range ids {
			want[m] = true
		}
		kept := s.held[:0]
		for _, h := range s.held {
			if h.AppID == app.AppID && want[h.MsgID] {
				n++
				continue
			}
			kept = append(kept, h)
		}
		for i := len(kept); i < len(s.held); i++ {
			s.held[i] = nil
		}
		s.held = kept
		s.stats.Confirmed += n
	}
	if len(s.confirms) < MaxCallLog {
		s.confirms = append(s.confirms, Confirm{Seq: len(s.confirms) + 1, At: s.now(), AppID: app.AppID, MsgIDs: ids, Outcome: outcome})
	}
	s.recordLocked(elemeapi.ActionConfirmPullMsg, app.AppKey, outcome, n)
	s.book.Unlock()
	switch fault {
	case FaultConfirmFail:
		answer(w, id, nil, &elemeapi.APIError{Code: elemeapi.CodeServerError, Message: "确认失败"})
	case FaultConfirmFalse:
		answer(w, id, false, nil)
	case FaultConfirmLost:
		http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
	default:
		answer(w, id, true, nil)
	}
}

func (s *Sandbox) failLocked(w http.ResponseWriter, action, appKey, id, code, msg string) {
	s.book.Lock()
	s.recordLocked(action, appKey, code, 0)
	s.book.Unlock()
	answer(w, id, nil, &elemeapi.APIError{Code: code, Message: msg})
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(http.MaxBytesReader(nil, r.Body, 1<<20))
	return b.Bytes(), err
}
