package deploy

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// scaledObject is the part of KEDA's keda.sh/v1alpha1 ScaledObject these manifests use. KEDA's
// Go module is too heavy to import for its types; unknown fields still fail the strict decode.
type scaledObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
	Spec struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount int `json:"minReplicaCount"`
		MaxReplicaCount int `json:"maxReplicaCount"`
		PollingInterval int `json:"pollingInterval"`
		CooldownPeriod  int `json:"cooldownPeriod"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// manifests is one kustomization, built and decoded strictly into the Kubernetes API types.
type manifests struct {
	deployments map[string]appsv1.Deployment
	pdbs        []policyv1.PodDisruptionBudget
	hpas        []autoscalingv2.HorizontalPodAutoscaler
	scaled      []scaledObject
	jobs        []batchv1.Job
	configMaps  map[string]corev1.ConfigMap
	secrets     map[string]corev1.Secret
	services    []corev1.Service
	monitoring  []string
}

func build(t *testing.T, dir string) manifests {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	m := manifests{deployments: map[string]appsv1.Deployment{}, configMaps: map[string]corev1.ConfigMap{}, secrets: map[string]corev1.Secret{}}
	for _, r := range res.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		id := r.GetKind() + "/" + r.GetName()
		strict := func(v any) {
			if err := yaml.UnmarshalStrict(b, v); err != nil {
				t.Errorf("%s does not decode as its API type: %v", id, err)
			}
		}
		switch r.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			strict(&d)
			m.deployments[d.Name] = d
		case "PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			strict(&p)
			m.pdbs = append(m.pdbs, p)
		case "HorizontalPodAutoscaler":
			var h autoscalingv2.HorizontalPodAutoscaler
			strict(&h)
			m.hpas = append(m.hpas, h)
		case "ScaledObject":
			var s scaledObject
			strict(&s)
			m.scaled = append(m.scaled, s)
		case "Job":
			var j batchv1.Job
			strict(&j)
			m.jobs = append(m.jobs, j)
		case "ConfigMap":
			var c corev1.ConfigMap
			strict(&c)
			m.configMaps[c.Name] = c
		case "Secret":
			var s corev1.Secret
			strict(&s)
			m.secrets[s.Name] = s
		case "Service":
			var s corev1.Service
			strict(&s)
			m.services = append(m.services, s)
		case "Namespace":
			var n corev1.Namespace
			strict(&n)
		case "PodMonitor", "PrometheusRule":
			m.monitoring = append(m.monitoring, id) // validated against their CRD schemas (k8s_schema_test.go)
		default:
			t.Errorf("unexpected object %s", id)
		}
	}
	return m
}

func TestKustomizeBaseAndOverlay(t *testing.T) {
	for _, dir := range []string{"k8s/base", "k8s/overlays/example"} {
		t.Run(dir, func(t *testing.T) {
			m := build(t, dir)
			for _, name := range []string{"ingress", "normalizer", "dispatcher", "elemepull"} {
				d, ok := m.deployments[name]
				if !ok {
					t.Errorf("deployment %s missing", name)
					continue
				}
				checkDeployment(t, d, name != "elemepull")
				if !slices.ContainsFunc(m.pdbs, func(p policyv1.PodDisruptionBudget) bool {
					return p.Spec.Selector.MatchLabels["app.kubernetes.io/name"] == name
				}) {
					t.Errorf("deployment %s has no PodDisruptionBudget", name)
				}
			}
			// The Eleme poller is one replica and never autoscaled: its Redis lease lets one
			// instance poll each app, so more pods would only stand by.
			if d := m.deployments["elemepull"]; d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
				t.Errorf("elemepull replicas = %v, want 1", d.Spec.Replicas)
			}
			if len(m.hpas) != 1 || m.hpas[0].Spec.ScaleTargetRef.Name != "ingress" {
				t.Errorf("want one HPA, for the ingress; got %+v", m.hpas)
			}
			partitions := topicPartitions(t, m)
			inputs := map[string]string{"normalizer": "callbacks.raw.v1", "dispatcher": "orders.status.v1"}
			for name, topic := range inputs {
				checkScaledObject(t, m, name, topic, partitions)
			}
		})
	}
}

// The overlay's generated ConfigMap and Secret are the ones the Deployments reference.
func TestOverlayReferencesResolve(t *testing.T) {
	m := build(t, "k8s/overlays/example")
	for _, d := range m.deployments {
		if d.Namespace != "orderpipe" {
			t.Errorf("%s in namespace %q, want orderpipe", d.Name, d.Namespace)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil {
					if _, ok := m.configMaps[ef.ConfigMapRef.Name]; !ok {
						t.Errorf("%s refers to missing ConfigMap %s", d.Name, ef.ConfigMapRef.Name)
					}
				}
				if ef.SecretRef != nil {
					if _, ok := m.secrets[ef.SecretRef.Name]; !ok {
						t.Errorf("%s refers to missing Secret %s", d.Name, ef.SecretRef.Name)
					}
				}
			}
			if strings.HasSuffix(c.Image, ":latest") {
				t.Errorf("%s: image %s is not pinned in the overlay", d.Name, c.Image)
			}
		}
	}
	for _, cm := range m.configMaps {
		if strings.HasPrefix(cm.Name, "orderpipe-config") && !strings.Contains(cm.Data["KAFKA_BROKERS"], "kafka-0") {
			t.Errorf("overlay did not merge KAFKA_BROKERS: %v", cm.Data)
		}
	}
}

func checkDeployment(t *testing.T, d appsv1.Deployment, autoscaled bool) {
	t.Helper()
	// A deployment scaled by KEDA or the HPA has no replicas field: it would reset their count
	// on every apply. (The Eleme poller is the one fixed at one replica.)
	if autoscaled && d.Spec.Replicas != nil {
		t.Errorf("%s: replicas: %d set on an autoscaled deployment", d.Name, *d.Spec.Replicas)
	}
	spec := d.Spec.Template.Spec
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: pods may run as root", d.Name)
	}
	for _, c := range spec.Containers {
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
		for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
			if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || !ports[probe.HTTPGet.Port.String()] {
				t.Errorf("%s: want an HTTP probe on %s at a declared port, got %+v", d.Name, path, probe)
			}
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: want cpu and memory requests and a memory limit, got %+v", d.Name, c.Resources)
		}
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
			return e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil &&
				e.ValueFrom.ResourceFieldRef.Resource == "limits.memory"
		}) {
			t.Errorf("%s: GOMEMLIMIT is not set from the container's memory limit (resourceFieldRef limits.memory)", d.Name)
		}
		if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("%s: root filesystem is writable", d.Name)
		}
	}
}

func envOf(d appsv1.Deployment, name string) string {
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// topicPartitions reads the partition count that the bootstrap Job creates topics with: the
// PARTITIONS of the ConfigMap the Job takes its settings from.
func topicPartitions(t *testing.T, m manifests) int {
	t.Helper()
	cm := topicsConfig(t, m)
	var n int
	if _, err := fmt.Sscan(cm.Data["PARTITIONS"], &n); err != nil {
		t.Fatalf("topic settings PARTITIONS %q: %v", cm.Data["PARTITIONS"], err)
	}
	return n
}

// topicsConfig is the ConfigMap of the topic Job's script and settings.
func topicsConfig(t *testing.T, m manifests) corev1.ConfigMap {
	t.Helper()
	if len(m.jobs) != 1 {
		t.Fatalf("want one topic Job, got %d", len(m.jobs))
	}
	for _, c := range m.jobs[0].Spec.Template.Spec.Containers {
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil && strings.HasPrefix(ef.ConfigMapRef.Name, "orderpipe-topics") {
				cm, ok := m.configMaps[ef.ConfigMapRef.Name]
				if !ok {
					t.Fatalf("topic Job refers to missing ConfigMap %s", ef.ConfigMapRef.Name)
				}
				return cm
			}
		}
	}
	t.Fatal("the topic Job takes no settings from an orderpipe-topics ConfigMap")
	return corev1.ConfigMap{}
}

// Each consumer scales on the lag of its own group on its own input topic, and never beyond the
// partition count: a member past it would sit idle.
func checkScaledObject(t *testing.T, m manifests, name, topic string, partitions int) {
	t.Helper()
	i := slices.IndexFunc(m.scaled, func(s scaledObject) bool { return s.Spec.ScaleTargetRef.Name == name })
	if i < 0 {
		t.Errorf("no ScaledObject for %s", name)
		return
	}
	s := m.scaled[i]
	if s.APIVersion != "keda.sh/v1alpha1" || len(s.Spec.Triggers) != 1 || s.Spec.Triggers[0].Type != "kafka" {
		t.Errorf("%s: want one keda.sh/v1alpha1 kafka trigger, got %+v", name, s)
		return
	}
	md := s.Spec.Triggers[0].Metadata
	if group := envOf(m.deployments[name], "KAFKA_GROUP_ID"); md["consumerGroup"] != group || group == "" {
		t.Errorf("%s: trigger consumerGroup %q, deployment KAFKA_GROUP_ID %q", name, md["consumerGroup"], group)
	}
	if md["topic"] != topic {
		t.Errorf("%s: trigger topic %q, want %q", name, md["topic"], topic)
	}
	if s.Spec.MaxReplicaCount < 1 || s.Spec.MaxReplicaCount > partitions {
		t.Errorf("%s: maxReplicaCount %d, want 1..%d (the partition count)", name, s.Spec.MaxReplicaCount, partitions)
	}
	if md["lagThreshold"] == "" || md["bootstrapServers"] == "" {
		t.Errorf("%s: trigger lacks lagThreshold or bootstrapServers: %v", name, md)
	}
	// A partition stuck on a paused shop or a retried record must not count: more members
	// cannot help it, and it would scale the consumers to the partition count.
	if md["excludePersistentLag"] != "true" {
		t.Errorf("%s: excludePersistentLag %q, want \"true\"", name, md["excludePersistentLag"])
	}
	// The threshold is documented against the measured per-instance throughput.
	perf, err := os.ReadFile("../docs/performance.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| " + name + " \\|.*\\| `" + md["lagThreshold"] + "` \\|")
	if !row.Match(perf) {
		t.Errorf("%s: lagThreshold %s is not in docs/performance.md's autoscaling table (row: | %s | ... | `%s` |)", name, md["lagThreshold"], name, md["lagThreshold"])
	}
}

// TestDispatcherShopsAndRoutesFromCluster: in Kubernetes the dispatcher never runs on its
// embedded demo shop and routes: DANGDANG_SHOPS is a file from a Secret, ROUTES_FILE one from a
// ConfigMap, and in the overlay both exist, the routes name only shops the Secret has, and no
// shop carries the demo's credentials.
func TestDispatcherShopsAndRoutesFromCluster(t *testing.T) {
	m := build(t, "k8s/overlays/example")
	d := m.deployments["dispatcher"]
	c := d.Spec.Template.Spec.Containers[0]
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.Name] = vm
	}
	var shopsSecret, routesMap string
	for _, v := range d.Spec.Template.Spec.Volumes {
		vm, ok := mounts[v.Name]
		if !ok {
			continue
		}
		switch {
		case v.Secret != nil && strings.HasPrefix(envOf(d, "DANGDANG_SHOPS"), vm.MountPath+"/"):
			shopsSecret = v.Secret.SecretName
		case v.ConfigMap != nil && strings.HasPrefix(envOf(d, "ROUTES_FILE"), vm.MountPath+"/"):
			routesMap = v.ConfigMap.Name
		}
	}
	if shopsSecret == "" || routesMap == "" {
		t.Fatalf("DANGDANG_SHOPS %q must be a file of a Secret volume and ROUTES_FILE %q one of a ConfigMap volume (secret %q, configmap %q)",
			envOf(d, "DANGDANG_SHOPS"), envOf(d, "ROUTES_FILE"), shopsSecret, routesMap)
	}
	if envOf(d, "DANGDANG_API_URL") != "" {
		t.Errorf("the base sets DANGDANG_API_URL %q; production uses the dispatcher's default", envOf(d, "DANGDANG_API_URL"))
	}
	sec, ok := m.secrets[shopsSecret]
	if !ok {
		t.Fatalf("Secret %s is not in the overlay", shopsSecret)
	}
	shopsFile := string(sec.Data["shops.yaml"])
	if shopsFile == "" {
		shopsFile = sec.StringData["shops.yaml"]
	}
	var shops struct {
		Shops map[string]struct {
			AppKey    string `json:"app_key"`
			AppSecret string `json:"app_secret"`
		} `json:"shops"`
	}
	if err := yaml.Unmarshal([]byte(shopsFile), &shops); err != nil || len(shops.Shops) == 0 {
		t.Fatalf("Secret %s shops.yaml: %v (%d shops)", shopsSecret, err, len(shops.Shops))
	}
	for name, s := range shops.Shops {
		if s.AppKey == "2100000000" || s.AppSecret == "test_secret" {
			t.Errorf("shop %s carries the embedded demo shop's credentials", name)
		}
	}
	cm, ok := m.configMaps[routesMap]
	if !ok {
		t.Fatalf("ConfigMap %s is not in the overlay", routesMap)
	}
	var routes struct {
		Routes []struct {
			Name string `json:"name"`
			To   struct {
				Dangdang *struct {
					Shop string `json:"shop"`
				} `json:"dangdang"`
			} `json:"to"`
		} `json:"routes"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["routes.yaml"]), &routes); err != nil || len(routes.Routes) == 0 {
		t.Fatalf("ConfigMap %s routes.yaml: %v", routesMap, err)
	}
	for _, r := range routes.Routes {
		if r.To.Dangdang != nil {
			if _, ok := shops.Shops[r.To.Dangdang.Shop]; !ok {
				t.Errorf("route %s names shop %q, which the Secret does not have", r.Name, r.To.Dangdang.Shop)
			}
		}
	}
}

// TestTopicJobRerunsOnChange: the topic Job creates RF 3 / min.insync.replicas 2 topics, and its
// name is its generated ConfigMap's (script + settings, hash-suffixed), so changing the script or
// a setting yields a Job of another name, which the next apply runs (a Job's template cannot
// change in place).
func TestTopicJobRerunsOnChange(t *testing.T) {
	m := build(t, "k8s/base")
	cm := topicsConfig(t, m)
	job := m.jobs[0]
	if cm.Data["REPLICATION"] != "3" || cm.Data["MIN_ISR"] != "2" {
		t.Errorf("topic settings REPLICATION %q MIN_ISR %q, want 3 and 2", cm.Data["REPLICATION"], cm.Data["MIN_ISR"])
	}
	if job.Name != cm.Name || !regexp.MustCompile(`^orderpipe-topics-[a-z0-9]{10}$`).MatchString(job.Name) {
		t.Errorf("Job name %q, want its generated ConfigMap's hash-suffixed name %q", job.Name, cm.Name)
	}
	if !strings.Contains(cm.Data["topics.sh"], "--if-not-exists") || !strings.Contains(cm.Data["topics.sh"], "kafka-configs.sh") {
		t.Error("topics.sh does not create idempotently and converge existing topics' settings")
	}

	// The same base with one setting changed, in memory.
	fs := filesys.MakeFsInMemory()
	entries, err := os.ReadDir("k8s/base")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile("k8s/base/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "topics.sh" {
			b = []byte(strings.Replace(string(b), "create dangdang.results.v1   2592000000", "create dangdang.results.v1   5184000000", 1))
		}
		if err := fs.WriteFile("/base/"+e.Name(), b); err != nil {
			t.Fatal(err)
		}
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/base")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Resources() {
		if r.GetKind() == "Job" && r.GetName() == job.Name {
			t.Errorf("the Job keeps its name %s after topics.sh changed: the change would never run", job.Name)
		}
	}
}
