package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/orderpipe/pipeline/ingress/internal/apicheck"
	"github.com/orderpipe/pipeline/ingress/internal/publish"
)

type openAPIDoc struct {
	OpenAPI string                                                   `yaml:"openapi"`
	Paths   map[string]map[string]struct{ Responses map[string]any } `yaml:"paths"`
}

// scriptedPublisher answers by the record key, so every documented reply can be provoked. The
// real Kafka path is covered by TestRepliesAndRecords; this test is about the document.
type scriptedPublisher struct{}

func (scriptedPublisher) Publish(_ context.Context, m kafka.Message) error {
	switch string(m.Key) {
	case "dianwoda:down", "eleme:down":
		return publish.ErrUnavailable
	case "dianwoda:busy", "eleme:busy":
		return publish.ErrBusy
	case "dianwoda:panic", "eleme:panic":
		panic("scripted")
	}
	return nil
}

// TestOpenAPIMatchesRouter: every documented route is a real route and vice versa, each route's
// documented response codes are exactly the codes its handler was seen to produce, and every
// reply seen validates against the document (kin-openapi's openapi3filter).
func TestOpenAPIMatchesRouter(t *testing.T) {
	checker, err := apicheck.Load()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	documented := map[string][]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			var codes []string
			for c := range op.Responses {
				codes = append(codes, c)
			}
			sort.Strings(codes)
			documented[strings.ToUpper(method)+" "+path] = codes
		}
	}

	srv := New(Config{
		MaxBody:         1 << 10,
		DianwodaSecrets: []string{dwdSecret},
		ElemeSecrets:    map[string][]string{elmApp: {elmSecret}},
		Publisher:       scriptedPublisher{},
		Ready:           func() error { return nil },
		Log:             zap.NewNop(),
		Registry:        prometheus.NewRegistry(),
	})
	e := srv.Handler()
	routes := map[string]bool{}
	for _, r := range e.Routes() {
		routes[r.Method+" "+r.Path] = true
	}
	for k := range documented {
		if !routes[k] {
			t.Errorf("documented route %s is not in the router", k)
		}
	}
	for k := range routes {
		if _, ok := documented[k]; !ok {
			t.Errorf("router route %s is not documented", k)
		}
	}

	unready := New(Config{MaxBody: 1, Publisher: scriptedPublisher{}, Ready: func() error { return publish.ErrUnavailable },
		Log: zap.NewNop(), Registry: prometheus.NewRegistry()}).Handler()

	dwd := func(id string) (url.Values, string) {
		body := `{"content":{"order_original_id":"` + id + `"},"msg_id":"m"}`
		return dwdQuery(body, dwdSecret), body
	}
	elm := func(id string) string {
		return elmBody(t, 12, `{"orderId":"`+id+`"}`, elmSecret)
	}
	type probe struct {
		h      http.Handler
		method string
		path   string
		query  url.Values
		body   string
	}
	var probes []probe
	for _, id := range []string{"ok", "down", "busy", "panic"} {
		q, b := dwd(id)
		probes = append(probes, probe{e, "POST", PathDianwoda, q, b}, probe{e, "POST", PathEleme, nil, elm(id)})
	}
	q, b := dwd("x")
	big := strings.Repeat(" ", 2000)
	probes = append(probes,
		probe{e, "POST", PathDianwoda, dwdQuery("[]", dwdSecret), "[]"},
		probe{e, "POST", PathDianwoda, q, b + " "},
		probe{e, "POST", PathDianwoda, dwdQuery(big, dwdSecret), big},
		probe{unready, "POST", PathDianwoda, q, b},
		probe{e, "POST", PathEleme, nil, "[]"},
		probe{e, "POST", PathEleme, nil, elmBody(t, 12, `{}`, "wrong")},
		probe{e, "POST", PathEleme, nil, big + "{}"},
		probe{e, "POST", PathEleme, nil, ""},
		probe{unready, "POST", PathEleme, nil, "{}"},
		probe{e, "GET", PathEleme, nil, ""},
		probe{unready, "GET", PathEleme, nil, ""},
		probe{e, "GET", PathHealthz, nil, ""},
		probe{e, "GET", PathReadyz, nil, ""},
		probe{unready, "GET", PathReadyz, nil, ""},
	)
	seen := map[string]map[string]bool{}
	for _, p := range probes {
		u := p.path
		if len(p.query) > 0 {
			u += "?" + p.query.Encode()
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(p.method, u, strings.NewReader(p.body))
		p.h.ServeHTTP(rec, req)
		if err := checker.Check(req, []byte(p.body), rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
			t.Error(err)
		}
		k := p.method + " " + p.path
		if seen[k] == nil {
			seen[k] = map[string]bool{}
		}
		code := rec.Code
		seen[k][strconv.Itoa(code)] = true
	}
	for k, codes := range documented {
		var got []string
		for c := range seen[k] {
			got = append(got, c)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(codes, ",") {
			t.Errorf("%s: documented codes %v, handlers produced %v", k, codes, got)
		}
	}
}
