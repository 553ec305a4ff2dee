package loadgen

import (
	"crypto/md5"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/orderpipe/pipeline/e2e/callbacks"
)

// This file builds realistic, signed callbacks. The signing is written here again, from
// docs/specs/platforms.md, rather than imported from the ingress: the load generator is an independent
// client, so a signing bug in the ingress cannot hide behind the same bug here.

// Callback is one HTTP request to send.
type Callback struct {
	Platform string
	Path     string // with query
	Body     []byte
}

// DianwodaFlow is a Dianwoda order's flow: action_code, order_status. The chaos workload walks
// the same flow.
var DianwodaFlow = [][2]string{
	{"order_create", "created"},
	{"rider_dispatch", "dispatched"},
	{"rider_arrive", "arrived"},
	{"rider_obtain", "obtained"},
	{"customer_sign", "completed"},
}

// ElemeStep is one push of an Eleme order's flow.
type ElemeStep struct {
	Type  int
	State string
	Kind  string // "order" or "delivery"
}

// ElemeFlow is an Eleme order's flow: push type and the message it carries. The chaos workload
// walks the same flow.
var ElemeFlow = []ElemeStep{
	{12, "valid", "order"},
	{52, "tobeAssignedCourier", "delivery"},
	{53, "tobeFetched", "delivery"},
	{54, "arrived", "delivery"},
	{55, "delivering", "delivery"},
	{56, "completed", "delivery"},
	{18, "settled", "order"},
}

// Signer holds the secrets the callbacks are signed with.
type Signer struct {
	DianwodaSecret string
	ElemeAppID     string
	ElemeSecret    string
}

// order is one order walking its flow.
type order struct {
	platform string
	id       string
	step     int
	shop     int64
}

func (o *order) steps() int {
	if o.platform == "dianwoda" {
		return len(DianwodaFlow)
	}
	return len(ElemeFlow)
}

// next builds the callback of the order's current step and advances it.
func (o *order) next(s Signer, now time.Time) Callback {
	defer func() { o.step++ }()
	ms := now.UnixMilli()
	if o.platform == "dianwoda" {
		st := DianwodaFlow[o.step]
		content := map[string]any{
			"order_original_id":  o.id,
			"order_status":       st[1],
			"action_code":        st[0],
			"action_detail":      "状态变更",
			"rider_code":         "10088",
			"rider_name":         "张德顺",
			"rider_mobile":       "13600000000",
			"time_status_update": ms,
		}
		body, _ := json.Marshal(map[string]any{
			"content":       content,
			"deliver_times": 1,
			"msg_id":        fmt.Sprintf("%x", md5.Sum([]byte(o.id+st[1]))),
			"pub_time":      ms,
		})
		nonce, ts, typ := strconv.Itoa(int(ms%1000000)), strconv.FormatInt(ms, 10), "dianwoda.order.status-update"
		sign := callbacks.DianwodaSign(s.DianwodaSecret, url.Values{"nonce": {nonce}, "timestamp": {ts}, "type": {typ}}, body)
		q := "type=" + typ + "&timestamp=" + ts + "&nonce=" + nonce + "&sign=" + sign
		return Callback{Platform: "dianwoda", Path: "?" + q, Body: body}
	}
	st := ElemeFlow[o.step]
	var msg map[string]any
	if st.Kind == "order" {
		msg = map[string]any{"orderId": o.id, "state": st.State, "shopId": o.shop, "updateTime": ms / 1000, "role": 3}
	} else {
		msg = map[string]any{"orderId": o.id, "state": st.State, "subState": "noSubstate", "shopId": o.shop,
			"name": "张三", "phone": "13600000000", "updateAt": ms}
	}
	msgText, _ := json.Marshal(msg)
	fields := map[string]string{
		"appId": s.ElemeAppID, "requestId": strconv.FormatInt(ms, 10) + o.id[len(o.id)-4:], "type": strconv.Itoa(st.Type),
		"message": string(msgText), "shopId": strconv.FormatInt(o.shop, 10), "timestamp": strconv.FormatInt(ms, 10),
		"userId": "100452735447201579",
	}
	sig := callbacks.ElemeSign(s.ElemeSecret, fields)
	// Numbers go out as JSON numbers, as Eleme sends them (the signature uses their digits).
	body := fmt.Sprintf(`{"appId":%s,"requestId":%q,"type":%d,"message":%s,"shopId":%d,"timestamp":%d,"signature":"%s","userId":100452735447201579}`,
		s.ElemeAppID, fields["requestId"], st.Type, mustJSON(string(msgText)), o.shop, ms, sig)
	return Callback{Platform: "eleme", Body: []byte(body)}
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Orders hands out callbacks: each generator walks a few orders at once, interleaving their
// steps, so one order's callbacks go out in flow order.
type Orders struct {
	signer    Signer
	prefix    string
	platforms []string
	live      []*order
	n         int
	rr        int
}

// NewOrders returns a generator for the given platforms ("dianwoda", "eleme"), order ids
// starting with prefix.
func NewOrders(s Signer, prefix string, platforms []string) *Orders {
	return &Orders{signer: s, prefix: prefix, platforms: platforms}
}

// Next returns the next callback.
func (g *Orders) Next(now time.Time) Callback {
	const concurrent = 4
	for len(g.live) < concurrent {
		p := g.platforms[g.n%len(g.platforms)]
		id := fmt.Sprintf("%s%012d", g.prefix, g.n)
		if p == "eleme" {
			// Eleme order ids are 18–19 digits, above 2^53.
			id = fmt.Sprintf("3%018d", hashID(g.prefix)%1e9*1e9+int64(g.n))
		}
		g.live = append(g.live, &order{platform: p, id: id, shop: 968861 + int64(g.n%50)})
		g.n++
	}
	g.rr++
	i := g.rr % len(g.live)
	o := g.live[i]
	cb := o.next(g.signer, now)
	if o.step >= o.steps() {
		g.live = append(g.live[:i], g.live[i+1:]...)
	}
	return cb
}

func hashID(s string) int64 {
	h := md5.Sum([]byte(s))
	var v int64
	for _, b := range h[:7] {
		v = v<<8 | int64(b)
	}
	return v
}
