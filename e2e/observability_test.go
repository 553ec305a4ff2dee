package e2e_test

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// metricRef matches the pipeline's own metric names in PromQL text.
var metricRef = regexp.MustCompile(`\b(?:ingress|normalizer|dispatcher|orderpipe)_[a-z0-9_]+\b`)

// TestDashboardAndAlertsUseRegisteredMetrics holds the Grafana dashboard and the Prometheus alert
// rules to the metrics the three running services register (GET /metrics/catalog, which lists
// labelled metrics before they have series). A renamed metric fails here, not on an SRE's screen.
func TestDashboardAndAlertsUseRegisteredMetrics(t *testing.T) {
	p := startPipeline(t)
	registered := map[string]bool{}
	for _, url := range []string{p.ingress.ReadyURL, p.normalizer.ReadyURL, p.dispatcher.ReadyURL} {
		resp, err := http.Get(strings.TrimSuffix(url, "/readyz") + "/metrics/catalog")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// Every service says which build it runs (plumbing/ops).
		if !slices.Contains(strings.Fields(string(b)), "orderpipe_build_info") {
			t.Errorf("%s: no orderpipe_build_info", url)
		}
		for _, name := range strings.Fields(string(b)) {
			registered[name] = true
		}
	}
	if !registered["ingress_requests_total"] || !registered["normalizer_events_emitted_total"] || !registered["dispatcher_dangdang_calls_total"] {
		t.Fatalf("catalogs look wrong: %d names", len(registered))
	}
	for _, file := range []string{"../deploy/observability/alerts.yaml", "../deploy/observability/grafana-dashboard.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		refs := map[string]bool{}
		for _, m := range metricRef.FindAllString(string(b), -1) {
			refs[m] = true
		}
		if len(refs) < 5 {
			t.Errorf("%s: only %d metric references found", file, len(refs))
		}
		var missing []string
		for ref := range refs {
			base := ref
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b := strings.TrimSuffix(ref, suffix); b != ref && registered[b] {
					base = b
				}
			}
			if !registered[base] {
				missing = append(missing, ref)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s uses metrics no service registers: %v", file, missing)
		}
	}
}
