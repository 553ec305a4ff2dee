package main

import (
	"context"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/schemas"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// The lead's make run and walking skeleton rely on this: a Dianwoda completed callback for order
// DD1719544796 goes to the demo shop as Dangdang order 1719544796.
func TestDefaultConfig(t *testing.T) {
	cfg, err := loadConfig(envOf(map[string]string{"DANGDANG_API_URL": "http://127.0.0.1:8090/openapi/rest"}))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Table.Route(&schemas.StatusEvent{Platform: "dianwoda", Kind: "delivery", Status: "delivered", OrderID: "DD1719544796"})
	if len(d.Topics) != 1 || d.Topics[0] != schemas.TopicDelivery || len(d.Dangdang) != 1 || d.Dangdang[0].Shop != "demo" || d.Dangdang[0].OrderID != "1719544796" {
		t.Fatalf("routes = %+v", d)
	}
	s := cfg.Shops["demo"]
	if s.AppKey != "2100000000" || s.AppSecret != "test_secret" || s.Session != "SESSIONKEY" {
		t.Fatalf("demo shop = %+v", s)
	}
	for kind, topic := range map[string]string{"order": schemas.TopicLifecycle, "refund": schemas.TopicRefund} {
		d := cfg.Table.Route(&schemas.StatusEvent{Platform: "eleme", Kind: kind, Status: "x", OrderID: "1"})
		if len(d.Topics) != 1 || d.Topics[0] != topic || len(d.Dangdang) != 0 {
			t.Errorf("%s routes = %+v", kind, d)
		}
	}
	if cfg.OpsAddr != ":8083" || cfg.GroupID != "dispatcher" || cfg.RedisPrefix != "op:" || cfg.BatchSize != 100 {
		t.Errorf("defaults = %+v", cfg)
	}
}

// The dispatcher lingers 20 ms on its fetches and its writes unless told otherwise: no platform
// waits on it, and each of its requests costs the co-located broker. KAFKA_PRODUCER_LINGER, when
// set, is taken as it is, so it means the same in every service; a bad FETCH_LINGER is refused
// by name.
func TestLingers(t *testing.T) {
	base := map[string]string{"DANGDANG_API_URL": "http://127.0.0.1:8090/openapi/rest"}
	with := func(k, v string) func(string) string {
		m := maps.Clone(base)
		m[k] = v
		return envOf(m)
	}
	for _, tt := range []struct {
		name           string
		env            func(string) string
		fetch, produce time.Duration
	}{
		{"defaults", envOf(base), 20 * time.Millisecond, 20 * time.Millisecond},
		{"fetch at once", with("FETCH_LINGER", "0"), 0, 20 * time.Millisecond},
		{"fetch 5ms", with("FETCH_LINGER", "5ms"), 5 * time.Millisecond, 20 * time.Millisecond},
		{"the operator's producer linger", with("KAFKA_PRODUCER_LINGER", "3ms"), 20 * time.Millisecond, 3 * time.Millisecond},
		{"no producer linger", with("KAFKA_PRODUCER_LINGER", "0"), 20 * time.Millisecond, 0},
	} {
		cfg, err := loadConfig(tt.env)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := cfg.Kafka.ProducerLinger(); cfg.FetchLinger != tt.fetch || got != tt.produce {
			t.Errorf("%s: FetchLinger %v, producer linger %v; want %v, %v", tt.name, cfg.FetchLinger, got, tt.fetch, tt.produce)
		}
	}
	for _, bad := range []string{"-1ms", "2s", "soon"} {
		if _, err := loadConfig(with("FETCH_LINGER", bad)); err == nil || !strings.Contains(err.Error(), "FETCH_LINGER") {
			t.Errorf("FETCH_LINGER=%s: err %v, want it refused by name", bad, err)
		}
	}
	if _, err := loadConfig(with("KAFKA_PRODUCER_LINGER", "soon")); err == nil || !strings.Contains(err.Error(), "KAFKA_PRODUCER_LINGER") {
		t.Errorf("KAFKA_PRODUCER_LINGER=soon: err %v, want it refused by name", err)
	}
}

func TestInvalidConfigStopsAtStart(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"bad route regexp", map[string]string{"ROUTES_FILE": writeFile(t, "r.yaml", `
routes:
  - name: ok
    to: {topic: t}
  - name: broken-dd
    match: {order_id: '^DD(?P<order>[0-9+$'}
    to: {dangdang: {shop: demo}}
`)}, []string{"ROUTES_FILE", `routes[1] "broken-dd"`, "match.order_id"}},
		{"route names unknown shop", map[string]string{"ROUTES_FILE": writeFile(t, "r.yaml", `
routes:
  - name: to-nowhere
    match: {order_id: '^DD(?P<order>[0-9]+)$'}
    to: {dangdang: {shop: acme}}
`)}, []string{`routes[0] "to-nowhere"`, `unknown shop "acme"`}},
		{"missing routes file", map[string]string{"ROUTES_FILE": "/nonexistent/routes.yaml"}, []string{"ROUTES_FILE", "no such file"}},
		{"every problem listed", map[string]string{"DANGDANG_BATCH_SIZE": "101", "DANGDANG_BATCH_WINDOW": "soon", "KAFKA_BROKERS": "nohostport"},
			[]string{"DANGDANG_BATCH_SIZE", "DANGDANG_BATCH_WINDOW", "KAFKA_BROKERS"}},
		{"secret env missing", map[string]string{"DANGDANG_SHOPS": `{"shops": {"demo": {"app_key": "1", "app_secret_env": "NOPE", "session": "s"}}}`},
			[]string{"DANGDANG_SHOPS", "NOPE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), envOf(tt.env), io.Discard)
			if err == nil {
				t.Fatal("want the service to refuse to start")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestDemoShopOnlyAgainstSandbox: the embedded demo shop has made-up credentials (the worked
// sign example); against the real Dangdang it would fail every write-back, or worse, be a real
// shop's by accident. With a non-sandbox DANGDANG_API_URL the dispatcher refuses to start and
// says why; against a sandbox (loopback, or the ddsandbox service) it starts.
func TestDemoShopOnlyAgainstSandbox(t *testing.T) {
	refused := []map[string]string{
		nil, // the default URL is production
		{"DANGDANG_API_URL": "https://api.open.dangdang.com/openapi/rest"},
		{"DANGDANG_API_URL": "http://dangdang-proxy.internal:8080/openapi/rest"},
		// the demo credentials under another name are still the demo shop
		{"DANGDANG_API_URL": "https://api.open.dangdang.com/openapi/rest", "DANGDANG_SHOPS": `{"shops": {"acme": {"app_key": "2100000000", "app_secret": "test_secret", "session": "SESSIONKEY"}}}`,
			"ROUTES_FILE": writeFile(t, "r.yaml", "routes:\n  - {name: a, match: {kind: delivery, order_id: '^DD(?P<order>[0-9]+)$'}, to: {dangdang: {shop: acme}}}\n")},
	}
	for _, env := range refused {
		_, err := loadConfig(envOf(env))
		if err == nil {
			t.Errorf("env %v: the demo shop against a non-sandbox URL was accepted", env)
			continue
		}
		for _, w := range []string{"DANGDANG_SHOPS", "demo shop", "sandbox", "DANGDANG_API_URL"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
		if strings.Contains(err.Error(), "test_secret") || strings.Contains(err.Error(), "SESSIONKEY") {
			t.Errorf("error %q shows a credential", err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8090/openapi/rest", "http://localhost:8090/openapi/rest", "http://[::1]:8090/openapi/rest", "http://ddsandbox:8090/openapi/rest"} {
		if _, err := loadConfig(envOf(map[string]string{"DANGDANG_API_URL": u})); err != nil {
			t.Errorf("demo shop against sandbox %s refused: %v", u, err)
		}
	}
	real := map[string]string{
		"DANGDANG_API_URL": "https://api.open.dangdang.com/openapi/rest",
		"DANGDANG_SHOPS":   `{"shops": {"demo": {"app_key": "7", "app_secret": "real", "session": "s"}}}`,
	}
	if _, err := loadConfig(envOf(real)); err != nil {
		t.Errorf("a real shop against production refused: %v", err)
	}
}
