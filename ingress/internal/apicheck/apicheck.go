// Package apicheck validates the ingress's real requests and replies against ingress/openapi.yaml
// with kin-openapi's openapi3filter, so the document and the handlers cannot drift apart. Only
// tests import it.
package apicheck

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Checker holds the loaded, validated document and its router.
type Checker struct {
	Doc    *openapi3.T
	router routers.Router
}

// DocPath is the absolute path of ingress/openapi.yaml.
func DocPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "openapi.yaml")
}

// Load reads ingress/openapi.yaml and validates it as an OpenAPI document.
func Load() (*Checker, error) {
	doc, err := openapi3.NewLoader().LoadFromFile(DocPath())
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate openapi.yaml: %w", err)
	}
	// The document's servers name real hosts; requests in tests go to 127.0.0.1:<random port>,
	// so route on the path alone.
	doc.Servers = nil
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route openapi.yaml: %w", err)
	}
	return &Checker{Doc: doc, router: r}, nil
}

// Check validates one exchange: the request must reach an operation the document describes, and
// the reply's status, content type and body must be one it documents for that operation. The
// request's own parameters and body are not validated: tests send bad ones on purpose, and
// refusing them (401, 400) is a documented reply. reqBody and resBody are the bytes exchanged.
func (c *Checker) Check(req *http.Request, reqBody []byte, status int, header http.Header, resBody []byte) error {
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := c.router.FindRoute(r)
	if err != nil {
		return fmt.Errorf("%s %s: not in openapi.yaml: %w", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(resBody)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("%s %s -> %d %s: reply: %w", req.Method, req.URL.Path, status, resBody, err)
	}
	return nil
}
