package server

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// loadOpenAPI loads and validates ingress/openapi.yaml with kin-openapi, a maintained OpenAPI
// implementation, as an integrator's tooling would.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	l := openapi3.NewLoader()
	doc, err := l.LoadFromFile("../../openapi.yaml")
	if err != nil {
		t.Fatalf("openapi.yaml does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// TestOpenAPIDocumentValid: the document itself is valid OpenAPI.
func TestOpenAPIDocumentValid(t *testing.T) {
	loadOpenAPI(t)
}
