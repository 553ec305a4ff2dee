// Package sandboxtest is the contract suite of the admin routes every partner sandbox serves
// (GET /sandbox/stats, GET/POST/DELETE /sandbox/faults, POST /sandbox/reset): the e2e harness,
// the chaos suite and the modules' tests drive the sandboxes through them, so their wire form
// (status codes, content type, the indented JSON bodies) is pinned here and run against each
// sandbox.
package sandboxtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Contract is what the suite needs to know of one sandbox.
type Contract struct {
	// Handler is a fresh sandbox's handler (no calls, no faults).
	Handler http.Handler
	// Fault is a valid fault as a client POSTs it; Echo is the body the sandbox answers with
	// (the fault as decoded) and Armed the GET /sandbox/faults body once it is armed.
	Fault, Echo, Armed string
	// Stats is the GET /sandbox/stats body of a fresh sandbox.
	Stats string
}

// Run checks the admin routes of c.Handler against the contract.
func Run(t *testing.T, c Contract) {
	t.Helper()
	srv := httptest.NewServer(c.Handler)
	t.Cleanup(srv.Close)
	const jsonType = "application/json"
	steps := []struct {
		name, method, path, body string
		wantStatus               int
		wantType, wantBody       string
	}{
		{"no faults", http.MethodGet, "/sandbox/faults", "", http.StatusOK, jsonType, "[]\n"},
		{"fresh stats", http.MethodGet, "/sandbox/stats", "", http.StatusOK, jsonType, c.Stats},
		{"fault not json", http.MethodPost, "/sandbox/faults", "{", http.StatusBadRequest, jsonType, "{\n  \"error\": \"unexpected EOF\"\n}\n"},
		{"unknown kind", http.MethodPost, "/sandbox/faults", `{"kind":"nope"}`, http.StatusBadRequest, jsonType, "{\n  \"error\": \"unknown fault kind \\\"nope\\\"\"\n}\n"},
		{"negative times", http.MethodPost, "/sandbox/faults", `{"kind":"slow","times":-1}`, http.StatusBadRequest, jsonType, "{\n  \"error\": \"times and delay_ms must be \\u003e= 0\"\n}\n"},
		{"arm", http.MethodPost, "/sandbox/faults", c.Fault, http.StatusCreated, jsonType, c.Echo},
		{"armed", http.MethodGet, "/sandbox/faults", "", http.StatusOK, jsonType, c.Armed},
		{"clear", http.MethodDelete, "/sandbox/faults", "", http.StatusNoContent, "", ""},
		{"cleared", http.MethodGet, "/sandbox/faults", "", http.StatusOK, jsonType, "[]\n"},
		{"arm again", http.MethodPost, "/sandbox/faults", c.Fault, http.StatusCreated, jsonType, c.Echo},
		{"reset", http.MethodPost, "/sandbox/reset", "", http.StatusNoContent, "", ""},
		{"reset clears faults", http.MethodGet, "/sandbox/faults", "", http.StatusOK, jsonType, "[]\n"},
		{"reset stats", http.MethodGet, "/sandbox/stats", "", http.StatusOK, jsonType, c.Stats},
	}
	for _, st := range steps {
		req, err := http.NewRequest(st.method, srv.URL+st.path, strings.NewReader(st.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: read: %v", st.name, err)
		}
		if resp.StatusCode != st.wantStatus || resp.Header.Get("Content-Type") != st.wantType || string(body) != st.wantBody {
			t.Errorf("%s: %s %s = %d %q %q, want %d %q %q", st.name, st.method, st.path,
				resp.StatusCode, resp.Header.Get("Content-Type"), body, st.wantStatus, st.wantType, st.wantBody)
		}
	}
}
