package deploy

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var updateRules = flag.Bool("update-rules", false, "rewrite k8s/components/prometheus-operator/prometheusrule.yaml from observability/alerts.yaml")

// k8sSchemas maps apiVersion/kind to the vendored JSON Schema it is validated against
// (testdata/k8s/SOURCES.md says where each comes from).
var k8sSchemas = map[string]string{
	"apps/v1/Deployment":                      "deployment-apps-v1.json",
	"batch/v1/Job":                            "job-batch-v1.json",
	"autoscaling/v2/HorizontalPodAutoscaler":  "horizontalpodautoscaler-autoscaling-v2.json",
	"policy/v1/PodDisruptionBudget":           "poddisruptionbudget-policy-v1.json",
	"v1/Service":                              "service-v1.json",
	"v1/ConfigMap":                            "configmap-v1.json",
	"v1/Secret":                               "secret-v1.json",
	"v1/Namespace":                            "namespace-v1.json",
	"keda.sh/v1alpha1/ScaledObject":           "keda.sh_scaledobject_v1alpha1.json",
	"monitoring.coreos.com/v1/PodMonitor":     "monitoring.coreos.com_podmonitor_v1.json",
	"monitoring.coreos.com/v1/PrometheusRule": "monitoring.coreos.com_prometheusrule_v1.json",
}

// TestManifestsValidAgainstKubernetesSchemas builds the base and the example overlay (with the
// Prometheus operator component) and validates every object against the Kubernetes API's own
// schema for its kind (strict: unknown fields fail), or the CRD's for KEDA and the Prometheus
// operator, the way kubeconform does, offline. A kind without a schema fails too.
func TestManifestsValidAgainstKubernetesSchemas(t *testing.T) {
	c := jsonschema.NewCompiler()
	compiled := map[string]*jsonschema.Schema{}
	for gvk, file := range k8sSchemas {
		path, err := filepath.Abs(filepath.Join("testdata/k8s", file))
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Compile(path)
		if err != nil {
			t.Fatalf("compile %s: %v", file, err)
		}
		compiled[gvk] = s
	}
	for _, dir := range []string{"k8s/base", "k8s/overlays/example"} {
		res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
		if err != nil {
			t.Fatalf("kustomize build %s: %v", dir, err)
		}
		kinds := map[string]bool{}
		for _, r := range res.Resources() {
			gvk := r.GetApiVersion() + "/" + r.GetKind()
			kinds[r.GetKind()] = true
			s := compiled[gvk]
			if s == nil {
				t.Errorf("%s: %s %s has no vendored schema to validate against", dir, gvk, r.GetName())
				continue
			}
			j, err := r.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(v); err != nil {
				t.Errorf("%s: %s %s is not valid:\n%v", dir, gvk, r.GetName(), err)
			}
		}
		if dir == "k8s/overlays/example" && (!kinds["PodMonitor"] || !kinds["PrometheusRule"]) {
			t.Errorf("%s: no PodMonitor or PrometheusRule (kinds: %v)", dir, kinds)
		}
	}
}

// TestSchemasRefuseUnknownFields: the validation above would catch a misspelt field (the
// vendored schemas are strict), so it is not a decode that ignores what it does not know.
func TestSchemasRefuseUnknownFields(t *testing.T) {
	path, _ := filepath.Abs("testdata/k8s/deployment-apps-v1.json")
	s, err := jsonschema.NewCompiler().Compile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},"spec":{"selector":{},"template":{"spec":{"containers":[{"name":"c","imagePullPolicy":"Always","resources":{"limits":{"memory":"1Gi"}},"envv":[]}]}}}}`
	v, _ := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(bad)))
	if err := s.Validate(v); err == nil {
		t.Error("a container with the unknown field envv validated")
	}
	good := bytes.Replace([]byte(bad), []byte(`"envv"`), []byte(`"env"`), 1)
	v, _ = jsonschema.UnmarshalJSON(bytes.NewReader(good))
	if err := s.Validate(v); err != nil {
		t.Errorf("a valid deployment was refused: %v", err)
	}
}

// TestPrometheusRuleMatchesAlerts: the PrometheusRule carries exactly the groups of
// observability/alerts.yaml, the file Prometheus users load directly.
func TestPrometheusRuleMatchesAlerts(t *testing.T) {
	const rulePath = "k8s/components/prometheus-operator/prometheusrule.yaml"
	raw, err := os.ReadFile("observability/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var alerts struct {
		Groups []any `json:"groups"`
	}
	if err := yaml.Unmarshal(raw, &alerts); err != nil {
		t.Fatal(err)
	}
	if *updateRules {
		rule := map[string]any{
			"apiVersion": "monitoring.coreos.com/v1",
			"kind":       "PrometheusRule",
			"metadata":   map[string]any{"name": "orderpipe"},
			"spec":       map[string]any{"groups": alerts.Groups},
		}
		b, err := yaml.Marshal(rule)
		if err != nil {
			t.Fatal(err)
		}
		head := "# Generated from deploy/observability/alerts.yaml by\n#   go test ./deploy -run TestPrometheusRuleMatchesAlerts -update-rules\n# Do not edit: edit alerts.yaml and regenerate. The runbook of each alert is docs/operations.md.\n"
		if err := os.WriteFile(rulePath, append([]byte(head), b...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(rulePath)
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &rule); err != nil {
		t.Fatal(err)
	}
	if len(alerts.Groups) == 0 || !reflect.DeepEqual(rule.Spec.Groups, alerts.Groups) {
		t.Errorf("%s differs from observability/alerts.yaml: regenerate with go test ./deploy -run TestPrometheusRuleMatchesAlerts -update-rules", rulePath)
	}
}
