// Package elemeapi speaks Eleme's OpenAPI request protocol (饿了么开放平台 "nop" JSON-RPC) for the
// two calls the compensation poller needs: eleme.msgNew.getPushFailMsg and
// eleme.msgNew.confirmPullMsg (docs/specs/platforms.md §1.3). It is the client side only; the sandbox in
// internal/elemesandbox is the server side of the same protocol, and both sign with Sign.
//
// # The request envelope
//
// One POST of a JSON object to <endpoint>/api/v1:
//
//	{"nop":"1.0.0","id":"<32 upper-case hex>|<unix ms>","action":"eleme.msgNew.getPushFailMsg",
//	 "token":"","metas":{"app_key":"<app key>","timestamp":<unix seconds>},
//	 "params":{"msgQueryRequest":{…}},"signature":"<MD5, upper-case hex>"}
//
// and the answer is {"id":…,"result":…,"error":null} or {"id":…,"result":null,
// "error":{"code":"EXCEED_LIMIT","message":"…"}}, HTTP 200 either way.
//
// Sources, read for this package (public SDKs of the Eleme open platform):
//   - github.com/xiangzhanyou/eleme-openapi-php-sdk, src/ElemeOpenApi/Protocol/RpcClient.php
//     (commit 58ee3a8): the envelope above, the "/api/v1" path, a 10 s timeout, the error codes
//     (SERVER_ERROR, ILLEGAL_REQUEST, UNAUTHORIZED, ACCESS_DENIED, METHOD_NOT_ALLOWED,
//     PERMISSION_DENIED, EXCEED_LIMIT, INVALID_SIGNATURE, INVALID_TIMESTAMP, VALIDATION_FAILED),
//     and generate_signature: array_merge(metas, params), ksort, key . "=" .
//     json_encode(value, JSON_UNESCAPED_SLASHES|JSON_UNESCAPED_UNICODE), then
//     strtoupper(md5(action . token . pairs . secret)).
//   - github.com/dllen/eleme-openapi-java-sdk, src/main/java/eleme/openapi/sdk/utils/SignatureUtil.java
//     (commit 8f7ef6c): the same recipe (TreeMap of params + app_key + timestamp, each value
//     JSON-encoded with Jackson, String.format("%s%s%s%s", action, token, pairs, secret), MD5
//     upper-case).
//   - github.com/lwnmengjing/eleme-openapi-go-sdk, apiUtil.go and config.go (commit bcebe85):
//     ApiBody{token, nop, metas, params, action, id, signature}, nop "1.0.0", the id form
//     "<UUID hex upper-case>|<ms>", and the endpoints https://open-api.shop.ele.me and
//     https://open-api-sandbox.shop.ele.me.
//   - The Python and PHP SDKs' MsgnewService (eleme/openapi msgnew service, repo unresolved in the
//     index): getPushFailMsg takes one parameter "msgQueryRequest", confirmPullMsg one parameter
//     "msgConfirmRequest". http://dianj.com.cn/News/Detail/21308: both are app-level, called
//     with an empty token ("token 必须为空" otherwise).
//
// What no public source settles (the fields inside msgQueryRequest / msgConfirmRequest, the
// shape of the result, the page size, confirm by ids or by batch) is decided in open.go, and
// only there.
package elemeapi

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Endpoints (lwnmengjing/eleme-openapi-go-sdk config.go). The request path is APIPath.
const (
	ProductionURL = "https://open-api.shop.ele.me"
	SandboxURL    = "https://open-api-sandbox.shop.ele.me"
	APIPath       = "/api/v1"
	// NOP is the protocol version every SDK sends.
	NOP = "1.0.0"
)

// Actions used by the poller.
const (
	ActionGetPushFailMsg = "eleme.msgNew.getPushFailMsg"
	ActionConfirmPullMsg = "eleme.msgNew.confirmPullMsg"
	// ActionGetNonReachedOMessages covers the non-core types; it needs a shop token, which the
	// pipeline does not hold (see README "Eleme compensation").
	ActionGetNonReachedOMessages = "eleme.message.getNonReachedOMessages"
)

// Error codes of the protocol (RpcClient.php). Anything else is a business error.
const (
	CodeServerError       = "SERVER_ERROR"
	CodeIllegalRequest    = "ILLEGAL_REQUEST"
	CodeUnauthorized      = "UNAUTHORIZED"
	CodeAccessDenied      = "ACCESS_DENIED"
	CodeMethodNotAllowed  = "METHOD_NOT_ALLOWED"
	CodePermissionDenied  = "PERMISSION_DENIED"
	CodeExceedLimit       = "EXCEED_LIMIT"
	CodeInvalidSignature  = "INVALID_SIGNATURE"
	CodeInvalidTimestamp  = "INVALID_TIMESTAMP"
	CodeValidationFailed  = "VALIDATION_FAILED"
	CodeBusinessException = "BIZ_EXCEPTION" // the sandbox's code for "any other"; the metric label of unknown codes
)

// KnownCodes are the codes kept verbatim as a metric label; others count as CodeBusinessException.
var KnownCodes = []string{CodeServerError, CodeIllegalRequest, CodeUnauthorized, CodeAccessDenied,
	CodeMethodNotAllowed, CodePermissionDenied, CodeExceedLimit, CodeInvalidSignature,
	CodeInvalidTimestamp, CodeValidationFailed, CodeBusinessException}

// Request is the request envelope. Params values are kept as the exact JSON text that is both
// signed and sent, so the signature always covers the bytes on the wire.
type Request struct {
	NOP       string                     `json:"nop"`
	ID        string                     `json:"id"`
	Action    string                     `json:"action"`
	Token     string                     `json:"token"`
	Metas     Metas                      `json:"metas"`
	Params    map[string]json.RawMessage `json:"params"`
	Signature string                     `json:"signature"`
}

// Metas are the system parameters; both are signed like params.
type Metas struct {
	AppKey    string `json:"app_key"`
	Timestamp int64  `json:"timestamp"` // unix seconds
}

// EncodeValue is json_encode(value, JSON_UNESCAPED_SLASHES|JSON_UNESCAPED_UNICODE): compact,
// UTF-8 kept, "/" and "<>&" not escaped.
func EncodeValue(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimRight(b.Bytes(), "\n")), nil
}

// SignBase returns the string that is hashed: action + token + the sorted key=json(value) pairs
// of metas and params + secret is Sign's input without the secret. Values are used as their
// compact JSON text (json.Compact of what was sent).
func SignBase(action, token string, metas Metas, params map[string]json.RawMessage) (string, error) {
	pairs := make(map[string]string, len(params)+2)
	for k, v := range params {
		var c bytes.Buffer
		if err := json.Compact(&c, v); err != nil {
			return "", fmt.Errorf("param %s: %w", k, err)
		}
		pairs[k] = c.String()
	}
	ak, _ := EncodeValue(metas.AppKey)
	pairs["app_key"] = string(ak)
	pairs["timestamp"] = strconv.FormatInt(metas.Timestamp, 10)
	keys := make([]string, 0, len(pairs))
	for k := range pairs {
		keys = append(keys, k)
	}
	sort.Strings(keys) // ksort / TreeMap: by key, byte order
	var b strings.Builder
	b.WriteString(action)
	b.WriteString(token)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(pairs[k])
	}
	return b.String(), nil
}

// Sign returns the request signature: upper-case hex MD5 of SignBase + secret.
func Sign(action, token string, metas Metas, params map[string]json.RawMessage, secret string) (string, error) {
	base, err := SignBase(action, token, metas, params)
	if err != nil {
		return "", err
	}
	sum := md5.Sum([]byte(base + secret))
	return strings.ToUpper(hex.EncodeToString(sum[:])), nil
}

// NewRequest builds a signed request. params values are encoded with EncodeValue.
func NewRequest(action, token, appKey, secret string, params map[string]any, now time.Time) (Request, error) {
	r := Request{NOP: NOP, ID: NewRequestID(now), Action: action, Token: token,
		Metas: Metas{AppKey: appKey, Timestamp: now.Unix()}, Params: make(map[string]json.RawMessage, len(params))}
	for k, v := range params {
		raw, err := EncodeValue(v)
		if err != nil {
			return Request{}, fmt.Errorf("encode param %s: %w", k, err)
		}
		r.Params[k] = raw
	}
	sig, err := Sign(action, token, r.Metas, r.Params, secret)
	if err != nil {
		return Request{}, err
	}
	r.Signature = sig
	return r, nil
}

// NewRequestID returns an id of the SDKs' form: 32 upper-case hex digits, "|", unix ms.
func NewRequestID(now time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return strings.ToUpper(hex.EncodeToString(b[:])) + "|" + strconv.FormatInt(now.UnixMilli(), 10)
}

// Response is the answer envelope.
type Response struct {
	ID     string          `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *APIError       `json:"error"`
}

// APIError is an error answer of the protocol.
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string { return "eleme api error " + e.Code + ": " + e.Message }

// Label returns the code as a bounded metric label.
func (e *APIError) Label() string {
	for _, c := range KnownCodes {
		if e.Code == c {
			return c
		}
	}
	return CodeBusinessException
}

// RateLimited reports whether the answer asks the caller to slow down.
func (e *APIError) RateLimited() bool { return e.Code == CodeExceedLimit }
