package ops

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestBuildInfoOnEveryRegistry: a service's registry (NewRegistry) and any registry given to
// Handler expose orderpipe_build_info with the version and commit stamped at build time.
func TestBuildInfoOnEveryRegistry(t *testing.T) {
	oldV, oldC := Version, Commit
	Version, Commit = "1.2.3", "0123abcd"
	t.Cleanup(func() { Version, Commit = oldV, oldC })

	for name, reg := range map[string]*prometheus.Registry{"NewRegistry": NewRegistry(), "Handler": prometheus.NewRegistry()} {
		h := Handler(reg, NewReadiness())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		var line string
		for _, l := range strings.Split(rec.Body.String(), "\n") {
			if strings.HasPrefix(l, "orderpipe_build_info{") {
				line = l
			}
		}
		if line == "" {
			t.Errorf("%s: no orderpipe_build_info in /metrics", name)
			continue
		}
		for _, want := range []string{`version="1.2.3"`, `commit="0123abcd"`, `go_version="go1.`, "} 1"} {
			if !strings.Contains(line, want) {
				t.Errorf("%s: %s lacks %s", name, line, want)
			}
		}
	}
}

// TestBuildInfoFallsBack: without ldflags the values come from the binary's build info, never
// empty labels.
func TestBuildInfoFallsBack(t *testing.T) {
	oldV, oldC := Version, Commit
	Version, Commit = "", ""
	t.Cleanup(func() { Version, Commit = oldV, oldC })
	v, c := buildVersion()
	if v == "" || c == "" {
		t.Errorf("buildVersion() = %q, %q; want non-empty fallbacks", v, c)
	}
}
