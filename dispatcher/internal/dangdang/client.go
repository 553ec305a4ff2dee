package dangdang

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/propagation"
)

// DefaultURL is the production endpoint.
const DefaultURL = "http://api.open.dangdang.com/openapi/rest"

// HTTPError is an answer with a non-2xx status.
type HTTPError struct {
	StatusCode int
	Body       string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("dangdang http status %d: %.200s", e.StatusCode, e.Body)
}

// Client calls distristatus.update. It is safe for concurrent use.
type Client struct {
	// URL is the endpoint (DANGDANG_API_URL).
	URL string
	// HTTP is the HTTP client; its Timeout bounds a call.
	HTTP *http.Client
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Propagator, when set, writes the call context's trace (W3C traceparent) into the request.
	Propagator propagation.TextMapPropagator
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// NewRequest builds the HTTP request for orders (exported for golden tests and the sandbox's).
func NewRequest(ctx context.Context, endpoint string, cred Credentials, now time.Time, orders []OrderUpdate) (*http.Request, error) {
	doc, err := RequestXML(now, orders)
	if err != nil {
		return nil, err
	}
	params := SystemParams(cred, now)
	sign, err := Sign(cred.AppSecret, params)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("dangdang url: %w", err)
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	q.Set("sign", sign)
	u.RawQuery = q.Encode()

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, FilePart, FilePart))
	h.Set("Content-Type", "text/xml")
	part, err := mw.CreatePart(h)
	if err != nil {
		return nil, fmt.Errorf("multipart: %w", err)
	}
	if _, err := part.Write(doc); err != nil {
		return nil, fmt.Errorf("multipart: %w", err)
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("multipart: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), &body)
	if err != nil {
		return nil, fmt.Errorf("dangdang request: %w", err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return req, nil
}

// Update sends one call. It returns the per-order results, or an *APIError (system error,
// rate limit, 176), an *HTTPError (non-2xx), an error wrapping ErrMalformed, or a transport error.
func (c *Client) Update(ctx context.Context, cred Credentials, orders []OrderUpdate) (*Response, error) {
	req, err := NewRequest(ctx, c.URL, cred, c.now(), orders)
	if err != nil {
		return nil, err
	}
	if c.Propagator != nil {
		c.Propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("dangdang call: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("dangdang read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, &HTTPError{StatusCode: resp.StatusCode, Body: string(body)}
	}
	return ParseResponse(body)
}
