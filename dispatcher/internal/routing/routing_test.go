package routing

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/orderpipe/pipeline/schemas"
)

var vars = map[string]string{"TOPIC_DELIVERY": "orders.delivery.v1", "TOPIC_LIFECYCLE": "orders.lifecycle.v1", "TOPIC_REFUND": "orders.refund.v1"}

const table = `
routes:
  - name: delivery
    match: {kind: delivery}
    to: {topic: "${TOPIC_DELIVERY}"}
  - name: lifecycle
    match: {kind: [order]}
    to: {topic: "${TOPIC_LIFECYCLE}"}
  - name: delivery-again
    match: {kind: delivery, platform: eleme}
    to: {topic: "${TOPIC_DELIVERY}"}
  - name: dd
    match:
      platform: [dianwoda, eleme]
      kind: delivery
      status: [delivered, delivery_failed]
      order_id: '^DD(?P<order>[0-9]+)$'
    to: {dangdang: {shop: demo}}
  - name: dd-other
    match: {order_id: '^X-(\d+)-(\d+)$', status: delivered}
    to: {dangdang: {shop: other, order_id: '${2}${1}'}}
`

func TestRoute(t *testing.T) {
	tb, err := Load([]byte(table), vars, map[string]bool{"demo": true, "other": true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give schemas.StatusEvent
		want Destinations
	}{
		{"dianwoda delivered DD", schemas.StatusEvent{Platform: "dianwoda", Kind: "delivery", Status: "delivered", OrderID: "DD1719544796"},
			Destinations{Topics: []string{"orders.delivery.v1"}, Dangdang: []DangdangTarget{{Route: "dd", Shop: "demo", OrderID: "1719544796"}}}},
		{"eleme topic once", schemas.StatusEvent{Platform: "eleme", Kind: "delivery", Status: "picked_up", OrderID: "DD1"},
			Destinations{Topics: []string{"orders.delivery.v1"}}},
		{"not a DD order", schemas.StatusEvent{Platform: "dianwoda", Kind: "delivery", Status: "delivered", OrderID: "FTP1"},
			Destinations{Topics: []string{"orders.delivery.v1"}}},
		{"DD with suffix", schemas.StatusEvent{Platform: "dianwoda", Kind: "delivery", Status: "delivered", OrderID: "DD12x"},
			Destinations{Topics: []string{"orders.delivery.v1"}}},
		{"order kind", schemas.StatusEvent{Platform: "eleme", Kind: "order", Status: "accepted", OrderID: "DD1"},
			Destinations{Topics: []string{"orders.lifecycle.v1"}}},
		{"refund: no route", schemas.StatusEvent{Platform: "eleme", Kind: "refund", Status: "x", OrderID: "1"}, Destinations{}},
		{"numbered captures", schemas.StatusEvent{Platform: "eleme", Kind: "delivery", Status: "delivered", OrderID: "X-12-34"},
			Destinations{Topics: []string{"orders.delivery.v1"}, Dangdang: []DangdangTarget{{Route: "dd-other", Shop: "other", OrderID: "3412"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tb.Route(&tt.give); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLoadErrorsNameTheEntry(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []string
	}{
		{"bad regexp", `routes: [{name: dd, match: {order_id: "^DD(["}, to: {dangdang: {shop: demo}}}]`, []string{`routes[0] "dd"`, "match.order_id"}},
		{"unknown shop", `routes: [{name: a, match: {order_id: "(?P<order>.*)"}, to: {topic: t}}, {name: b, match: {order_id: "(?P<order>.*)"}, to: {dangdang: {shop: nope}}}]`, []string{`routes[1] "b"`, `unknown shop "nope"`}},
		{"both destinations", `routes: [{name: a, to: {topic: t, dangdang: {shop: demo}}}]`, []string{`routes[0] "a"`, "exactly one"}},
		{"no destination", `routes: [{name: a}]`, []string{`routes[0] "a"`, "want one of"}},
		{"unknown variable", `routes: [{name: a, to: {topic: "${TOPIC_NOPE}"}}]`, []string{`routes[0] "a"`, "${TOPIC_NOPE}"}},
		{"bad topic", `routes: [{name: a, to: {topic: "a topic"}}]`, []string{`routes[0] "a"`, "not a valid topic"}},
		{"capture missing", `routes: [{name: dd, match: {order_id: "^DD([0-9]+)$"}, to: {dangdang: {shop: demo}}}]`, []string{`routes[0] "dd"`, "${order} refers to no capture"}},
		{"dangdang without pattern", `routes: [{name: dd, to: {dangdang: {shop: demo}}}]`, []string{`routes[0] "dd"`, "needs match.order_id"}},
		{"duplicate names", `routes: [{name: a, to: {topic: t}}, {name: a, to: {topic: u}}]`, []string{`routes[1] "a"`, "duplicate"}},
		{"bad kind and platform", `routes: [{name: a, match: {kind: parcel, platform: meituan}, to: {topic: t}}]`, []string{"unknown kind", "unknown platform"}},
		{"unknown field", `routes: [{name: a, match: {kinds: delivery}, to: {topic: t}}]`, []string{"kinds"}},
		{"empty", `routes: []`, []string{"no routes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.give), vars, map[string]bool{"demo": true})
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadShops(t *testing.T) {
	env := map[string]string{"DD_SECRET": "from-env"}
	getenv := func(k string) string { return env[k] }
	def := []byte("shops:\n  demo: {app_key: '2100000000', app_secret: test_secret, session: SESSIONKEY}\n")

	shops, err := LoadShops("", def, getenv)
	if err != nil || shops["demo"].AppSecret != "test_secret" || shops["demo"].Concurrency != 2 || shops["demo"].RatePerSecond != 10 {
		t.Fatalf("default: %v %+v", err, shops["demo"])
	}
	inline := `{"shops": {"a": {"app_key": "1", "app_secret_env": "DD_SECRET", "session": "S", "allow_success_to_failure": true, "concurrency": 4}}}`
	shops, err = LoadShops(inline, def, getenv)
	if err != nil || shops["a"].AppSecret != "from-env" || !shops["a"].AllowSuccessToFailure || shops["a"].Concurrency != 4 {
		t.Fatalf("inline: %v %+v", err, shops["a"])
	}
	path := filepath.Join(t.TempDir(), "shops.yaml")
	os.WriteFile(path, []byte("shops:\n  b: {app_key: '2', app_secret: x, session: y}\n"), 0o600)
	if shops, err = LoadShops(path, def, getenv); err != nil || shops["b"].AppKey != "2" {
		t.Fatalf("file: %v", err)
	}
	bad := []struct{ give, want string }{
		{`{"shops": {"a": {"app_key": "1", "app_secret_env": "MISSING", "session": "S"}}}`, `shop "a": app_secret_env: environment variable MISSING is empty`},
		{`{"shops": {"a": {"app_secret": "x", "session": "S"}}}`, `shop "a": app_key is required`},
		{`{"shops": {"a": {"app_key": "1", "app_secret": "x", "session": "S", "burst": -1}}}`, `must be positive`},
		{"/nonexistent/shops.yaml", "no such file"},
	}
	for _, b := range bad {
		if _, err := LoadShops(b.give, def, getenv); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: error %v, want %q", b.give, err, b.want)
		}
	}
}
