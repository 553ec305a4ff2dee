// Package callbacks builds signed platform callbacks the way Dianwoda and Eleme send them, for the
// demo (`make run`), the end-to-end tests and the load generator. The signing follows
// docs/specs/platforms.md; the ingress's verifiers are tested against the same worked examples.
package callbacks

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// DianwodaType is the message type of a Dianwoda order status change.
const DianwodaType = "dianwoda.order.status-update"

// DianwodaContent is the `content` of a Dianwoda status callback.
type DianwodaContent struct {
	OrderOriginalID  string `json:"order_original_id"`
	OrderStatus      string `json:"order_status"`
	ActionCode       string `json:"action_code"`
	ActionSubCode    string `json:"action_sub_code,omitempty"`
	ActionDetail     string `json:"action_detail,omitempty"`
	RiderCode        string `json:"rider_code,omitempty"`
	RiderName        string `json:"rider_name,omitempty"`
	RiderMobile      string `json:"rider_mobile,omitempty"`
	TimeStatusUpdate int64  `json:"time_status_update"`
}

// Dianwoda is one Dianwoda callback request: its query and its body.
type Dianwoda struct {
	Query url.Values
	Body  []byte
}

// NewDianwoda builds the body {content, deliver_times, msg_id, pub_time} and signs it:
// sign = sha1("nonce=…&timestamp=…&type=…&body=<raw body>&secret=<secret>"), lower-case hex.
func NewDianwoda(secret string, c DianwodaContent, msgID string, deliverTimes int, pubTime int64, nonce string) Dianwoda {
	body, _ := json.Marshal(struct {
		Content      DianwodaContent `json:"content"`
		DeliverTimes int             `json:"deliver_times"`
		MsgID        string          `json:"msg_id"`
		PubTime      int64           `json:"pub_time"`
	}{c, deliverTimes, msgID, pubTime})
	q := url.Values{}
	q.Set("type", DianwodaType)
	q.Set("timestamp", fmt.Sprint(pubTime))
	q.Set("nonce", nonce)
	q.Set("sign", DianwodaSign(secret, q, body))
	return Dianwoda{Query: q, Body: body}
}

// DianwodaSign computes the Dianwoda callback signature over the sorted nonce, timestamp and type
// query parameters, the raw body and the secret.
func DianwodaSign(secret string, q url.Values, body []byte) string {
	keys := []string{"nonce", "timestamp", "type"}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + q.Get(k) + "&")
	}
	b.WriteString("body=")
	b.Write(body)
	b.WriteString("&secret=" + secret)
	sum := sha1.Sum([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// Eleme is one Eleme push body, with its fields in the order Eleme's examples use.
type Eleme struct {
	AppID     string // a JSON number on the wire
	RequestID string
	Type      int
	Message   string // the JSON text of the message, carried as a JSON string
	ShopID    string // a JSON number on the wire
	Timestamp int64
	UserID    string // a JSON number on the wire
}

// Body returns the signed push body. signature = upper(md5(sorted "k=v" of every top-level field
// but signature, joined, + secret)), with `message` verbatim.
func (e Eleme) Body(secret string) []byte {
	msg, _ := json.Marshal(e.Message)
	fields := map[string]string{
		"appId":     e.AppID,
		"requestId": e.RequestID,
		"type":      fmt.Sprint(e.Type),
		"message":   e.Message,
		"shopId":    e.ShopID,
		"timestamp": fmt.Sprint(e.Timestamp),
		"userId":    e.UserID,
	}
	sig := ElemeSign(secret, fields)
	return fmt.Appendf(nil, `{"appId":%s,"requestId":%q,"type":%d,"message":%s,"shopId":%s,"timestamp":%d,"signature":%q,"userId":%s}`,
		e.AppID, e.RequestID, e.Type, msg, e.ShopID, e.Timestamp, sig, e.UserID)
}

// ElemeSign computes the Eleme push signature over the given top-level fields (raw values).
func ElemeSign(secret string, fields map[string]string) string {
	pairs := make([]string, 0, len(fields))
	for k, v := range fields {
		if k == "signature" {
			continue
		}
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	sum := md5.Sum([]byte(strings.Join(pairs, "") + secret))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}
