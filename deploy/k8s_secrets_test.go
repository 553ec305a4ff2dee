package deploy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestOverlaySecuredConnection: the example overlay connects to SASL_SSL Kafka and to Redis with
// TLS and an ACL user; every secret reaches the pods as a file from a Secret the overlay
// generates (a *_FILE variable under a read-only mount of that Secret), never as a value in the
// ConfigMap.
func TestOverlaySecuredConnection(t *testing.T) {
	m := build(t, "k8s/overlays/example")
	var cfg corev1.ConfigMap
	for name, cm := range m.configMaps {
		if strings.HasPrefix(name, "orderpipe-config") {
			cfg = cm
		}
	}
	for k, want := range map[string]string{"KAFKA_TLS": "true", "KAFKA_SASL_MECHANISM": "scram-sha-512", "REDIS_TLS": "true"} {
		if cfg.Data[k] != want {
			t.Errorf("ConfigMap %s = %q, want %q", k, cfg.Data[k], want)
		}
	}
	for k := range cfg.Data {
		if strings.Contains(k, "PASSWORD") && !strings.HasSuffix(k, "_FILE") {
			t.Errorf("ConfigMap holds %s: secrets belong in a Secret, mounted as a file", k)
		}
	}
	// Exact names: kustomize rewrites a generated Secret's hashed name in the Pod volumes.
	secretOf := func(name string) *corev1.Secret {
		if s, ok := m.secrets[name]; ok {
			return &s
		}
		return nil
	}
	check := func(what string, spec corev1.PodSpec) {
		mounts := map[string]string{} // mount path -> Secret name
		vols := map[string]string{}
		for _, v := range spec.Volumes {
			if v.Secret != nil {
				vols[v.Name] = v.Secret.SecretName
			}
		}
		for _, vm := range spec.Containers[0].VolumeMounts {
			if s, ok := vols[vm.Name]; ok && vm.ReadOnly {
				mounts[vm.MountPath] = s
			}
		}
		for k, path := range cfg.Data {
			if !strings.HasSuffix(k, "_FILE") {
				continue
			}
			dir, key := path[:strings.LastIndex(path, "/")], path[strings.LastIndex(path, "/")+1:]
			s := secretOf(mounts[dir])
			if s == nil {
				t.Errorf("%s: %s=%s is not under a read-only mount of a generated Secret", what, k, path)
				continue
			}
			if _, ok := s.Data[key]; !ok {
				if _, ok := s.StringData[key]; !ok {
					t.Errorf("%s: %s=%s: Secret %s has no key %s", what, k, path, s.Name, key)
				}
			}
		}
	}
	for name, d := range m.deployments {
		check("deployment "+name, d.Spec.Template.Spec)
	}
	for _, j := range m.jobs {
		check("job "+j.Name, j.Spec.Template.Spec)
	}
}
