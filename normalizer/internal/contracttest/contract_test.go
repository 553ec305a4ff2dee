package contracttest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/orderpipe/pipeline/normalizer/internal/normalize"
	"github.com/orderpipe/pipeline/schemas"
)

var update = flag.Bool("update", false, "rewrite the status-event goldens in schemas/testdata from the raw ones")

const (
	schemaDir = "../../../schemas/jsonschema"
	goldenDir = "../../../schemas/testdata"
	asyncAPI  = "../../../schemas/asyncapi.yaml"
)

// compile loads a schema file by its path, as a consumer's stock validator would: the files
// carry no $id, so relative $refs resolve against the file's own location, offline.
func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.AssertContent()
	path, err := filepath.Abs(filepath.Join(schemaDir, name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(path)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return s
}

func readJSON(t *testing.T, path string) any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// roundTrip decodes b strictly into a new value of v's type, encodes it again and compares the
// two JSON documents semantically.
func roundTrip[T any](t *testing.T, name string, b []byte) T {
	t.Helper()
	var v T
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s does not decode into %T: %v", name, v, err)
	}
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var a, b2 any
	_ = json.Unmarshal(b, &a)
	_ = json.Unmarshal(again, &b2)
	if !reflect.DeepEqual(a, b2) {
		t.Fatalf("%s does not round-trip through %T:\n in: %s\nout: %s", name, v, b, again)
	}
	return v
}

func TestGoldensValidateAndRoundTrip(t *testing.T) {
	tests := []struct {
		glob   string
		schema string
		check  func(t *testing.T, name string, b []byte)
	}{
		{"raw-envelope.*.json", "raw-envelope.schema.json", func(t *testing.T, n string, b []byte) { roundTrip[schemas.RawEnvelope](t, n, b) }},
		{"status-event.*.json", "status-event.schema.json", func(t *testing.T, n string, b []byte) {
			ev := roundTrip[schemas.StatusEvent](t, n, b)
			info, ok := schemas.LookupStatus(ev.Kind, ev.Status)
			if !ok || info.Terminal != ev.Terminal {
				t.Errorf("%s: %s/%s terminal %v is not in the vocabulary", n, ev.Kind, ev.Status, ev.Terminal)
			}
		}},
		{"dangdang-result.*.json", "dangdang-result.schema.json", func(t *testing.T, n string, b []byte) { roundTrip[schemas.DangdangResult](t, n, b) }},
		{"dlq-headers.json", "dlq-headers.schema.json", func(t *testing.T, n string, b []byte) {
			h := roundTrip[map[string]string](t, n, b)
			for _, k := range []string{schemas.HeaderDLQReason, schemas.HeaderDLQError, schemas.HeaderDLQTopic, schemas.HeaderDLQPartition, schemas.HeaderDLQOffset, schemas.HeaderDLQService, schemas.HeaderDLQTime} {
				if h[k] == "" {
					t.Errorf("%s: %s missing (Go constant and golden disagree)", n, k)
				}
			}
		}},
		{"ce-headers.json", "ce-headers.schema.json", func(t *testing.T, n string, b []byte) {
			h := roundTrip[map[string]string](t, n, b)
			if h[schemas.HeaderCESpecVersion] != schemas.CESpecVersion || h[schemas.HeaderCEType] != schemas.CETypeStatus {
				t.Errorf("%s disagrees with the Go constants", n)
			}
		}},
	}
	kinds := map[string]bool{}
	for _, tt := range tests {
		files, _ := filepath.Glob(filepath.Join(goldenDir, tt.glob))
		if len(files) == 0 {
			t.Errorf("no golden files %s", tt.glob)
		}
		sch := compile(t, tt.schema)
		for _, f := range files {
			t.Run(filepath.Base(f), func(t *testing.T) {
				if err := sch.Validate(readJSON(t, f)); err != nil {
					t.Fatalf("%s does not validate against %s: %v", f, tt.schema, err)
				}
				b, _ := os.ReadFile(f)
				tt.check(t, filepath.Base(f), b)
				if strings.HasPrefix(filepath.Base(f), "status-event.") {
					var ev schemas.StatusEvent
					_ = json.Unmarshal(b, &ev)
					kinds[ev.Kind] = true
				}
			})
		}
	}
	for _, k := range []string{schemas.KindDelivery, schemas.KindOrder, schemas.KindRefund} {
		if !kinds[k] {
			t.Errorf("no golden status event of kind %s", k)
		}
	}
}

// TestRawGoldensNormalizeToEventGoldens: the example raw envelopes become the example events.
func TestRawGoldensNormalizeToEventGoldens(t *testing.T) {
	tests := []struct {
		raw, event string
		stale      bool
		skip       string
	}{
		{raw: "raw-envelope.dianwoda.json", event: "status-event.delivery.json"},
		{raw: "raw-envelope.dianwoda.json", event: "status-event.delivery-stale.json", stale: true},
		{raw: "raw-envelope.eleme-delivery.json", event: "status-event.delivery-eleme.json"},
		{raw: "raw-envelope.eleme-order.json", event: "status-event.order.json"},
		{raw: "raw-envelope.eleme-refund.json", event: "status-event.refund.json"},
		{raw: "raw-envelope.eleme-unknown-type.json", event: "status-event.order-unknown.json"},
		{raw: "raw-envelope.eleme-shop.json", skip: normalize.SkipNotOrderEvent},
	}
	for _, tt := range tests {
		t.Run(tt.raw+"->"+tt.event, func(t *testing.T) {
			v, err := os.ReadFile(filepath.Join(goldenDir, tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			res, err := normalize.Record(v)
			if err != nil {
				t.Fatal(err)
			}
			if tt.skip != "" {
				if res.Skip != tt.skip || len(res.Events) != 0 {
					t.Fatalf("want skip %q, got %+v", tt.skip, res)
				}
				return
			}
			ev := res.Events[0]
			ev.Stale = tt.stale // the guard's verdict, set by the consumer
			got, _ := json.MarshalIndent(ev, "", "  ")
			got = append(got, '\n')
			path := filepath.Join(goldenDir, tt.event)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs:\n got %s\nwant %s", tt.event, got, want)
			}
		})
	}
}

// TestNormalizerOutputValidates: every event of the normalizer's golden cases validates.
func TestNormalizerOutputValidates(t *testing.T) {
	sch := compile(t, "status-event.schema.json")
	files, _ := filepath.Glob("../normalize/testdata/cases/*.golden.json")
	if len(files) < 50 {
		t.Fatalf("found only %d normalizer goldens", len(files))
	}
	n := 0
	for _, f := range files {
		var out struct {
			Events []json.RawMessage `json:"events"`
		}
		b, _ := os.ReadFile(f)
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Events {
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(e))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(v); err != nil {
				t.Errorf("%s: %v", f, err)
			}
			n++
		}
	}
	t.Logf("%d events validated", n)
}

// TestAsyncAPI: the document parses, describes every topic of the contract with a producer and
// consumers, and every reference resolves (local pointers and schema files).
func TestAsyncAPI(t *testing.T) {
	raw, err := os.ReadFile(asyncAPI)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("asyncapi.yaml does not parse: %v", err)
	}
	if doc["asyncapi"] != "3.0.0" {
		t.Fatalf("asyncapi version %v, want 3.0.0", doc["asyncapi"])
	}
	channels, _ := doc["channels"].(map[string]any)
	addresses := map[string]map[string]any{}
	for name, c := range channels {
		ch := c.(map[string]any)
		addr, _ := ch["address"].(string)
		addresses[addr] = ch
		if ch["x-producer"] == nil || ch["x-consumers"] == nil || ch["messages"] == nil {
			t.Errorf("channel %s lacks producer, consumers or messages", name)
		}
	}
	for _, topic := range []string{schemas.TopicRaw, schemas.TopicRawDLQ, schemas.TopicStatus, schemas.TopicDelivery,
		schemas.TopicLifecycle, schemas.TopicRefund, schemas.TopicDangdangResult, schemas.TopicStatusDLQ} {
		if addresses[topic] == nil {
			t.Errorf("topic %s is not described", topic)
		}
	}
	// Every channel has a send and a receive operation.
	ops, _ := doc["operations"].(map[string]any)
	actions := map[string]map[string]bool{}
	for name, o := range ops {
		op := o.(map[string]any)
		ref, _ := op["channel"].(map[string]any)["$ref"].(string)
		if actions[ref] == nil {
			actions[ref] = map[string]bool{}
		}
		a, _ := op["action"].(string)
		if a != "send" && a != "receive" {
			t.Errorf("operation %s: action %q", name, a)
		}
		actions[ref][a] = true
	}
	for name := range channels {
		a := actions["#/channels/"+name]
		if !a["send"] || !a["receive"] {
			t.Errorf("channel %s: operations %v, want send and receive", name, a)
		}
	}
	// Every $ref resolves.
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "$ref" {
					refs = append(refs, e.(string))
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	sort.Strings(refs)
	for _, ref := range refs {
		switch {
		case strings.HasPrefix(ref, "#/"):
			var cur any = doc
			for _, part := range strings.Split(ref[2:], "/") {
				m, ok := cur.(map[string]any)
				if !ok || m[part] == nil {
					t.Errorf("%s does not resolve", ref)
					break
				}
				cur = m[part]
			}
		case strings.HasPrefix(ref, "./jsonschema/"):
			compile(t, strings.TrimPrefix(ref, "./jsonschema/"))
		default:
			t.Errorf("unexpected reference %s", ref)
		}
	}
	if len(refs) < 20 {
		t.Errorf("only %d references found", len(refs))
	}
}
