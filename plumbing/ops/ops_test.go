package ops

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestReadinessNeedsEveryCheckAndNoDrain(t *testing.T) {
	reg := NewRegistry()
	ready := NewReadiness("kafka", "redis")
	h := Handler(reg, ready)
	if code, _ := get(t, h, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("before any check: %d, want 503", code)
	}
	ready.Set("kafka", nil)
	ready.Set("redis", nil)
	if code, _ := get(t, h, "/readyz"); code != http.StatusOK {
		t.Errorf("all checks pass: %d, want 200", code)
	}
	if _, m := get(t, h, "/metrics"); !strings.Contains(m, "orderpipe_ready 1\n") {
		t.Errorf("ready: /metrics lacks orderpipe_ready 1")
	}
	ready.Set("consumer", io.ErrUnexpectedEOF)
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "consumer") {
		t.Errorf("a failing check: %d %q, want 503 naming it", code, body)
	}
	ready.Set("consumer", nil)
	ready.Drain()
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("draining: %d %q, want 503", code, body)
	}
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("healthz while draining: %d, want 200", code)
	}
	if _, m := get(t, h, "/metrics"); !strings.Contains(m, "orderpipe_ready 0\n") {
		t.Errorf("draining: /metrics lacks orderpipe_ready 0")
	}
}

// The catalog lists labelled metrics that have no series yet, which /metrics leaves out.
func TestCatalogListsMetricsWithoutSeries(t *testing.T) {
	reg := NewRegistry()
	reg.MustRegister(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "svc_things_total", Help: "h"}, []string{"outcome"}))
	h := Handler(reg, NewReadiness())
	_, metrics := get(t, h, "/metrics")
	if strings.Contains(metrics, "svc_things_total") {
		t.Fatal("premise: an empty vector is not in /metrics")
	}
	code, catalog := get(t, h, "/metrics/catalog")
	if code != http.StatusOK || !strings.Contains(catalog, "svc_things_total\n") || !strings.Contains(catalog, "go_goroutines\n") {
		t.Errorf("catalog = %d\n%s", code, catalog)
	}
}

// A service stopped while a CPU profile is being taken on its ops port (an SRE's
// /debug/pprof/profile?seconds=30) must still stop at once and cleanly: the profile ends early
// with what it has. Before, Shutdown waited the full 5 s for it and the service exited with
// "ops shutdown: context deadline exceeded", status 1.
func TestServeStopsDuringAProfile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- ServeListener(ctx, ln, Handler(NewRegistry(), NewReadiness())) }()

	got := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/debug/pprof/profile?seconds=30")
		if err != nil {
			got <- -1
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	time.Sleep(500 * time.Millisecond) // the profile is running
	stopped := time.Now()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("ServeListener: %v", err)
		}
		if d := time.Since(stopped); d > 2*time.Second {
			t.Errorf("stopping took %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeListener did not return")
	}
	if code := <-got; code != http.StatusOK {
		t.Errorf("the profile's request got %d, want 200 with the profile so far", code)
	}
}
