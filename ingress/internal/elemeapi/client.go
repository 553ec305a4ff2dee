package elemeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// App is one Eleme application: its appId (pushes and msgNew name it), its app_key (metas) and
// its secret (signatures). The secret never appears in an error or a log.
type App struct {
	AppID  string
	AppKey string
	Secret string
}

// Client calls the OpenAPI. The zero value is not usable; set URL.
type Client struct {
	// URL is the endpoint without the path: ProductionURL, SandboxURL or a sandbox of the tests.
	URL string
	// HTTP is the client; nil means a client of its own.
	HTTP *http.Client
	// Timeout bounds one call; default 10 s (RpcClient.php's CURLOPT_TIMEOUT).
	Timeout time.Duration
	// Now is the clock of metas.timestamp and the request id; default time.Now.
	Now func() time.Time
}

// HTTPError is a non-200 answer.
type HTTPError struct{ Status int }

func (e *HTTPError) Error() string { return fmt.Sprintf("eleme api answered HTTP %d", e.Status) }

// Call sends one signed request and returns its result, or an *APIError, *HTTPError or
// transport error.
func (c *Client) Call(ctx context.Context, app App, action, token string, params map[string]any) (json.RawMessage, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	req, err := NewRequest(action, token, app.AppKey, app.Secret, params, now())
	if err != nil {
		return nil, fmt.Errorf("build %s request: %w", action, err)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s request: %w", action, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+APIPath, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build %s request: %w", action, err)
	}
	hr.Header.Set("Content-Type", "application/json; charset=utf-8")
	hr.Header.Set("User-Agent", "orderpipe-elemepull")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", action, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s answer: %w", action, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("call %s: %w", action, &HTTPError{Status: resp.StatusCode})
	}
	var r Response
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode %s answer: %w: %v", action, ErrBadResult, err)
	}
	if r.Error != nil {
		return nil, fmt.Errorf("call %s: %w", action, r.Error)
	}
	return r.Result, nil
}

// appIDValue is the appId as JSON: its digits when numeric (as the SDKs' int), else a string.
func appIDValue(id string) json.RawMessage {
	if id != "" && strings.Trim(id, "0123456789") == "" {
		return json.RawMessage(id)
	}
	b, _ := EncodeValue(id)
	return b
}

// GetPushFailMsg returns up to pageSize failed pushes of app that were not confirmed yet.
func (c *Client) GetPushFailMsg(ctx context.Context, app App, pageSize int) ([]Message, error) {
	q := map[string]any{FieldAppID: appIDValue(app.AppID), FieldPageSize: pageSize}
	res, err := c.Call(ctx, app, ActionGetPushFailMsg, "", map[string]any{ParamQuery: orderedObject(q, FieldAppID, FieldPageSize)})
	if err != nil {
		return nil, err
	}
	msgs, err := ParseMessages(res)
	if err != nil {
		return nil, fmt.Errorf("read %s result: %w", ActionGetPushFailMsg, err)
	}
	return msgs, nil
}

// ConfirmPullMsg confirms the messages with these ids (open.go 2).
func (c *Client) ConfirmPullMsg(ctx context.Context, app App, ids []json.RawMessage) error {
	q := map[string]any{FieldAppID: appIDValue(app.AppID), FieldMsgIDs: ids}
	res, err := c.Call(ctx, app, ActionConfirmPullMsg, "", map[string]any{ParamConfirm: orderedObject(q, FieldAppID, FieldMsgIDs)})
	if err != nil {
		return err
	}
	if err := ParseConfirm(res); err != nil {
		return fmt.Errorf("read %s result: %w", ActionConfirmPullMsg, err)
	}
	return nil
}

// orderedObject encodes m with its keys in the given order (as the SDKs' request objects are
// declared), so the bytes signed are the bytes sent whatever the encoder does with maps.
func orderedObject(m map[string]any, keys ...string) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := EncodeValue(k)
		vb, _ := EncodeValue(m[k])
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Label classifies an error of Call for the failed-calls metric: the protocol's code (bounded,
// KnownCodes), or timeout, http_5xx, http_4xx, network, bad_result, not_confirmed.
func Label(err error) string {
	var ae *APIError
	var he *HTTPError
	var ne net.Error
	switch {
	case errors.As(err, &ae):
		return ae.Label()
	case errors.Is(err, ErrNotConfirmed):
		return "not_confirmed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &he) && he.Status >= 500:
		return "http_5xx"
	case errors.As(err, &he):
		return "http_4xx"
	case errors.Is(err, ErrBadResult):
		return "bad_result"
	}
	return "network"
}

// RateLimited reports whether err is an EXCEED_LIMIT answer.
func RateLimited(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.RateLimited()
}
