package dangdang

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// OrderResult is Dangdang's answer for one order.
type OrderResult struct {
	OrderID string
	// Code is orderOperCode verbatim; "0" is success.
	Code string
	// Message is orderOperation (UTF-8).
	Message string
}

// OK reports whether Dangdang accepted the order.
func (r OrderResult) OK() bool { return strings.TrimSpace(r.Code) == "0" }

// Response is a parsed answer with per-order results.
type Response struct {
	FunctionID string
	Time       string
	Orders     []OrderResult
}

// APIError is a system or call-level error answer (errorResponse/errorCode, Error/operCode, or
// Result/operCode without per-order results).
type APIError struct {
	Code    string
	Message string
}

func (e *APIError) Error() string { return "dangdang error " + e.Code + ": " + e.Message }

// RateLimited reports whether Dangdang refused the call for its per-shop call frequency.
func (e *APIError) RateLimited() bool {
	return strings.Contains(e.Message, "频次超限") || strings.Contains(e.Message, "访问频率过高")
}

// SubscriptionExpired reports errorCode 176: the app–shop subscription has expired; calls for the
// shop cannot succeed until someone re-authorises it.
func (e *APIError) SubscriptionExpired() bool {
	return strings.TrimSpace(e.Code) == SubscriptionExpiredCode
}

// ErrMalformed wraps an answer that is not a Dangdang response.
var ErrMalformed = errors.New("malformed dangdang response")

type xmlOrder struct {
	OrderID        string `xml:"orderID"`
	OrderOperCode  string `xml:"orderOperCode"`
	OrderOperation string `xml:"orderOperation"`
}

type xmlCode struct {
	OperCode  string `xml:"operCode"`
	Operation string `xml:"operation"`
}

type xmlResponse struct {
	XMLName      xml.Name
	FunctionID   string   `xml:"functionID"`
	Time         string   `xml:"time"`
	ErrorCode    string   `xml:"errorCode"`
	ErrorMessage string   `xml:"errorMessage"`
	Error        *xmlCode `xml:"Error"`
	Result       *struct {
		OperCode  string     `xml:"operCode"`
		Operation string     `xml:"operation"`
		Orders    []xmlOrder `xml:"OrdersList>OrderInfo"`
	} `xml:"Result"`
	ErrorResponse *struct {
		ErrorCode    string `xml:"errorCode"`
		ErrorMessage string `xml:"errorMessage"`
	} `xml:"errorResponse"`
}

func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "gbk", "gb2312", "cp936":
		return simplifiedchinese.GBK.NewDecoder().Reader(in), nil
	case "gb18030":
		return simplifiedchinese.GB18030.NewDecoder().Reader(in), nil
	case "utf-8", "utf8", "":
		return in, nil
	}
	return nil, fmt.Errorf("unsupported charset %q", label)
}

// ParseResponse reads a GBK (or declared-charset) XML answer. It returns the per-order results,
// or an *APIError for a system error, or an error wrapping ErrMalformed.
func ParseResponse(body []byte) (*Response, error) {
	body = bytes.TrimSpace(body)
	if !bytes.HasPrefix(body, []byte("<?xml")) {
		// No declaration means no charset: Dangdang answers GBK.
		if dec, err := FromGBK(body); err == nil {
			body = dec
		}
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.CharsetReader = charsetReader
	var x xmlResponse
	if err := d.Decode(&x); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	trim := strings.TrimSpace
	switch {
	case x.ErrorResponse != nil && trim(x.ErrorResponse.ErrorCode) != "":
		return nil, &APIError{Code: trim(x.ErrorResponse.ErrorCode), Message: trim(x.ErrorResponse.ErrorMessage)}
	case trim(x.ErrorCode) != "":
		return nil, &APIError{Code: trim(x.ErrorCode), Message: trim(x.ErrorMessage)}
	case x.Error != nil && trim(x.Error.OperCode) != "" && trim(x.Error.OperCode) != "0":
		return nil, &APIError{Code: trim(x.Error.OperCode), Message: trim(x.Error.Operation)}
	}
	if x.XMLName.Local != "response" {
		return nil, fmt.Errorf("%w: root element <%s>", ErrMalformed, x.XMLName.Local)
	}
	if x.Result == nil {
		return nil, fmt.Errorf("%w: no Result", ErrMalformed)
	}
	if len(x.Result.Orders) == 0 {
		if c := trim(x.Result.OperCode); c != "" && c != "0" {
			return nil, &APIError{Code: c, Message: trim(x.Result.Operation)}
		}
		return nil, fmt.Errorf("%w: no OrderInfo", ErrMalformed)
	}
	r := &Response{FunctionID: trim(x.FunctionID), Time: trim(x.Time)}
	for _, o := range x.Result.Orders {
		if trim(o.OrderID) == "" || trim(o.OrderOperCode) == "" {
			return nil, fmt.Errorf("%w: OrderInfo without orderID or orderOperCode", ErrMalformed)
		}
		r.Orders = append(r.Orders, OrderResult{OrderID: trim(o.OrderID), Code: trim(o.OrderOperCode), Message: trim(o.OrderOperation)})
	}
	return r, nil
}
