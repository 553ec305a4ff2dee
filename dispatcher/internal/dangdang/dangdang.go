// Package dangdang is a client of Dangdang's dangdang.orders.distristatus.update API: it marks
// self-delivered orders as delivered (distriStatus 1) or failed (2), up to 100 orders per call.
//
// The wire format follows the Dangdang page and docs/specs/platforms.md §3: system parameters on the URL
// query, signed with the upper-case MD5 of secret + sorted key+value of the seven system
// parameters + secret over GBK bytes; the request XML GBK-encoded in the multipart file part
// updateMultiOrdersDistriStatus; times in Beijing time as 2006-01-02 15:04:05. The answer is GBK
// XML with one orderOperCode/orderOperation per order, or a system error (errorResponse/errorCode,
// Error/operCode, Result/operCode).
//
// The package does no retrying: it classifies what happened (per-order results, *APIError with
// RateLimited/SubscriptionExpired, *HTTPError, transport errors) and its caller decides.
package dangdang

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Method is the API method name.
const Method = "dangdang.orders.distristatus.update"

// FilePart is the multipart field (and file name) of the request XML.
const FilePart = "updateMultiOrdersDistriStatus"

// MaxOrders is the most orders one call may carry.
const MaxOrders = 100

// TimeLayout is Dangdang's time format, in Beijing time.
const TimeLayout = "2006-01-02 15:04:05"

// Distribution statuses.
const (
	DistriDelivered = 1 // 配送成功
	DistriFailed    = 2 // 配送失败
)

// SubscriptionExpiredCode is errorCode 176: the app–shop subscription has expired.
const SubscriptionExpiredCode = "176"

// Beijing is UTC+8 without DST; a fixed zone so no tzdata is needed.
var Beijing = time.FixedZone("CST", 8*3600)

// BeijingTime formats t as Dangdang expects.
func BeijingTime(t time.Time) string { return t.In(Beijing).Format(TimeLayout) }

// Credentials identify one shop's authorisation.
type Credentials struct {
	AppKey    string
	AppSecret string
	Session   string
}

// SystemParams returns the seven signed system parameters of a call at time now.
func SystemParams(c Credentials, now time.Time) map[string]string {
	return map[string]string{
		"method":      Method,
		"app_key":     c.AppKey,
		"session":     c.Session,
		"format":      "xml",
		"v":           "1.0",
		"sign_method": "md5",
		"timestamp":   BeijingTime(now),
	}
}

// Sign returns upper(md5(secret + sorted key+value of params + secret)) over GBK bytes. Only the
// system parameters are signed; "sign" itself is ignored if present.
func Sign(secret string, params map[string]string) (string, error) {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "sign" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(secret)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteString(params[k])
	}
	b.WriteString(secret)
	gbk, err := ToGBK([]byte(b.String()))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	sum := md5.Sum(gbk)
	return strings.ToUpper(hex.EncodeToString(sum[:])), nil
}

// ToGBK encodes UTF-8 text as GBK.
func ToGBK(b []byte) ([]byte, error) {
	out, err := simplifiedchinese.GBK.NewEncoder().Bytes(b)
	if err != nil {
		return nil, fmt.Errorf("encode gbk: %w", err)
	}
	return out, nil
}

// FromGBK decodes GBK text to UTF-8.
func FromGBK(b []byte) ([]byte, error) {
	out, err := simplifiedchinese.GBK.NewDecoder().Bytes(b)
	if err != nil {
		return nil, fmt.Errorf("decode gbk: %w", err)
	}
	return out, nil
}

// OrderUpdate is one order's new distribution status.
type OrderUpdate struct {
	OrderID      string
	DistriStatus int
	DistriTime   time.Time
}

// ErrTooManyOrders is returned for a request of more than MaxOrders orders.
var ErrTooManyOrders = errors.New("more than 100 orders in one request")

// RequestXML returns the GBK bytes of the request file for orders at time now.
func RequestXML(now time.Time, orders []OrderUpdate) ([]byte, error) {
	if len(orders) == 0 {
		return nil, errors.New("request without orders")
	}
	if len(orders) > MaxOrders {
		return nil, ErrTooManyOrders
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="GBK"?>` + "\n")
	b.WriteString("<request>\n")
	b.WriteString("\t<functionID>" + Method + "</functionID>\n")
	b.WriteString("\t<time>" + BeijingTime(now) + "</time>\n")
	b.WriteString("\t<OrdersList>\n")
	for _, o := range orders {
		if o.DistriStatus != DistriDelivered && o.DistriStatus != DistriFailed {
			return nil, fmt.Errorf("order %s: distriStatus %d is neither 1 nor 2", o.OrderID, o.DistriStatus)
		}
		b.WriteString("\t\t<OrderInfo>\n")
		b.WriteString("\t\t\t<orderID>")
		escape(&b, o.OrderID)
		b.WriteString("</orderID>\n")
		b.WriteString("\t\t\t<distriStatus>" + strconv.Itoa(o.DistriStatus) + "</distriStatus>\n")
		b.WriteString("\t\t\t<distriTime>" + BeijingTime(o.DistriTime) + "</distriTime>\n")
		b.WriteString("\t\t</OrderInfo>\n")
	}
	b.WriteString("\t</OrdersList>\n")
	b.WriteString("</request>\n")
	return ToGBK(b.Bytes())
}

func escape(b *bytes.Buffer, s string) {
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		default:
			b.WriteRune(r)
		}
	}
}
