// Package ops serves the operational routes every service has, on a port of their own (OPS_ADDR):
// GET /healthz (liveness: 200 while the process can serve), GET /readyz (200 only while every
// readiness check passes and the service is not draining), GET /metrics (Prometheus text
// exposition from the service's own registry) and GET /metrics/catalog (the name of every
// registered metric, one a line, series or not). net/http/pprof is mounted under /debug/pprof/.
package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness collects the state of a service's dependencies. Components report with Set; the
// service is ready while every named check is nil and it is not draining. A check that was never
// set counts as not ready, so a service is not ready before its dependencies were seen working.
type Readiness struct {
	mu       sync.Mutex
	checks   map[string]error
	draining bool
}

// NewReadiness returns a Readiness waiting for the named checks.
func NewReadiness(names ...string) *Readiness {
	r := &Readiness{checks: map[string]error{}}
	for _, n := range names {
		r.checks[n] = errors.New("not checked yet")
	}
	return r
}

// Set records the state of one dependency: nil is healthy.
func (r *Readiness) Set(name string, err error) {
	r.mu.Lock()
	r.checks[name] = err
	r.mu.Unlock()
}

// Drain marks the service as shutting down: not ready from now on.
func (r *Readiness) Drain() {
	r.mu.Lock()
	r.draining = true
	r.mu.Unlock()
}

// Err returns nil when ready, or every reason it is not.
func (r *Readiness) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var msgs []string
	if r.draining {
		msgs = append(msgs, "draining")
	}
	for name, err := range r.checks {
		if err != nil {
			msgs = append(msgs, name+": "+err.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	sort.Strings(msgs)
	return errors.New(strings.Join(msgs, "; "))
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Catalog lists the names of every metric registered in reg, sorted. Unlike /metrics it includes
// labelled metrics that have no series yet, so dashboards and alerts can be checked against it.
func Catalog(reg prometheus.Collector) []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		reg.Describe(ch)
		close(ch)
	}()
	seen := map[string]bool{}
	for d := range ch {
		if m := descName.FindStringSubmatch(d.String()); m != nil {
			seen[m[1]] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// NewRegistry returns a per-process registry with the Go and process collectors and
// orderpipe_build_info.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newBuildInfo())
	return reg
}

// Handler returns the ops routes. It also registers orderpipe_ready in reg: 1 while ready, 0
// while not, so that alerting on readiness needs no Kubernetes metrics; and
// orderpipe_build_info when reg does not have it yet, so every service exposes it.
func Handler(reg *prometheus.Registry, ready *Readiness) http.Handler {
	_ = reg.Register(newBuildInfo()) // already registered by NewRegistry: the error says so
	_ = reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orderpipe_ready",
		Help: "1 while the service is ready (every dependency check passes, not draining), else 0.",
	}, func() float64 {
		if ready.Err() != nil {
			return 0
		}
		return 1
	}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready.Err(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /metrics/catalog", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, name := range Catalog(reg) {
			fmt.Fprintln(w, name)
		}
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Serve runs the ops server on addr until ctx ends, then shuts it down within a few seconds.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ops listen %s: %w", addr, err)
	}
	return ServeListener(ctx, ln, h)
}

// ServeListener is Serve on an open listener. Its requests' contexts end with ctx, so that a
// profile or trace being taken when the service stops ends early with what it has, and the
// shutdown does not wait for it.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second, // pprof profiles take 30 s by default
		IdleTimeout:       60 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ops serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("ops shutdown: %w", err)
	}
	return nil
}
