package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// The official AsyncAPI 3.0.0 JSON Schema, vendored from
// github.com/asyncapi/spec-json-schemas (schemas/3.0.0.json at commit
// 7dd3990d9fff9df76e81c8d2ab544e0000f29aff, Apache-2.0, testdata/asyncapi/LICENSE). It is the
// bundle the AsyncAPI parser and Studio validate with; its $ids are http://asyncapi.com/...
const asyncAPISchemaID = "http://asyncapi.com/definitions/3.0.0/asyncapi.json"

// TestAsyncAPIValidAgainstOfficialSchema validates schemas/asyncapi.yaml against the official
// AsyncAPI 3.0.0 schema (which includes the Kafka bindings' schemas).
func TestAsyncAPIValidAgainstOfficialSchema(t *testing.T) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	bundle := readJSON(t, "testdata/asyncapi/3.0.0.json")
	if err := c.AddResource(asyncAPISchemaID, bundle); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(asyncAPISchemaID)
	if err != nil {
		t.Fatalf("compile the AsyncAPI schema: %v", err)
	}
	doc := asyncAPIDoc(t)
	if err := s.Validate(doc); err != nil {
		t.Fatalf("schemas/asyncapi.yaml is not valid AsyncAPI 3.0.0:\n%v", err)
	}
}

func asyncAPIDoc(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("../schemas/asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(string(j)))
	if err != nil {
		t.Fatal(err)
	}
	return v.(map[string]any)
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

// TestJSONSchemasResolveAsShipped validates every golden event with a stock validator set up the
// way a downstream team would: a new compiler with its default (file) loader, pointed at the
// shipped schema file; no resources registered, no base URI, no network. Every $ref must
// resolve from where the files lie.
func TestJSONSchemasResolveAsShipped(t *testing.T) {
	goldens, _ := filepath.Glob("../schemas/testdata/*.json")
	if len(goldens) < 10 {
		t.Fatalf("only %d goldens", len(goldens))
	}
	for _, g := range goldens {
		base := filepath.Base(g)
		name, _, _ := strings.Cut(base, ".")
		schema, err := filepath.Abs(filepath.Join("../schemas/jsonschema", name+".schema.json"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(schema); err != nil {
			t.Errorf("%s: no schema %s", base, schema)
			continue
		}
		c := jsonschema.NewCompiler()
		s, err := c.Compile(schema)
		if err != nil {
			t.Errorf("%s: a stock validator cannot compile %s as shipped: %v", base, filepath.Base(schema), err)
			continue
		}
		if err := s.Validate(readJSON(t, g)); err != nil {
			t.Errorf("%s does not validate against %s: %v", base, filepath.Base(schema), err)
		}
	}
}

// TestAsyncAPIDescribesSecurityAndTopicConfig: the production server says how clients
// authenticate (SASL over TLS), and every channel gives its topic's configuration as the topic
// Job creates it.
func TestAsyncAPIDescribesSecurityAndTopicConfig(t *testing.T) {
	doc := asyncAPIDoc(t)
	servers, _ := doc["servers"].(map[string]any)
	prod, _ := servers["production"].(map[string]any)
	if prod["protocol"] != "kafka-secure" || len(asSlice(prod["security"])) == 0 {
		t.Errorf("servers.production: protocol %v, security %v; want kafka-secure with SASL security", prod["protocol"], prod["security"])
	}
	job, err := os.ReadFile("k8s/base/topics.sh")
	if err != nil {
		t.Fatal(err)
	}
	channels, _ := doc["channels"].(map[string]any)
	for name, c := range channels {
		ch := c.(map[string]any)
		k, _ := pathOf(ch, "bindings", "kafka").(map[string]any)
		tc, _ := k["topicConfiguration"].(map[string]any)
		for _, key := range []string{"retention.ms", "max.message.bytes", "min.insync.replicas"} {
			if tc[key] == nil {
				t.Errorf("channel %s: topicConfiguration lacks %s", name, key)
			}
		}
		if k["partitions"] == nil || k["replicas"] == nil {
			t.Errorf("channel %s: binding lacks partitions or replicas", name)
		}
		addr, _ := ch["address"].(string)
		if !strings.Contains(string(job), addr) {
			t.Errorf("channel %s: topic %s is not created by the topic Job", name, addr)
		}
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func pathOf(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}
