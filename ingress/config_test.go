package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := loadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.OpsAddr != ":8081" || c.TopicRaw != "callbacks.raw.v1" ||
		c.MaxBody != 1<<20 || c.WriteTimeout != 5*time.Second || c.Kafka.Brokers[0] != "127.0.0.1:9092" ||
		!c.TopicAutoCreate || c.TopicPartitions != 12 || len(c.DianwodaSecrets) != 0 || len(c.ElemeSecrets) != 0 {
		t.Errorf("defaults: %+v", c)
	}
}

func TestSecrets(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{
		"DIANWODA_SECRETS": "a, b",
		"ELEME_SECRETS":    "1=x,1=y, 2=z",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.DianwodaSecrets, "|") != "a|b" {
		t.Errorf("dianwoda %v", c.DianwodaSecrets)
	}
	if strings.Join(c.ElemeSecrets["1"], "|") != "x|y" || strings.Join(c.ElemeSecrets["2"], "|") != "z" {
		t.Errorf("eleme %v", c.ElemeSecrets)
	}
}

// TestEveryProblemListed: one start reports all wrong variables, and never a secret's value.
func TestEveryProblemListed(t *testing.T) {
	_, err := loadConfig(envOf(map[string]string{
		"KAFKA_BROKERS":         "nohostport",
		"HTTP_ADDR":             "x",
		"ELEME_SECRETS":         "1=ok,topsecretvalue",
		"INGRESS_MAX_INFLIGHT":  "0",
		"INGRESS_WRITE_TIMEOUT": "soon",
		"LOG_LEVEL":             "loud",
		"INGRESS_LOG_ACCEPTED":  "some",
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"KAFKA_BROKERS", "HTTP_ADDR", "ELEME_SECRETS: item 2", "INGRESS_MAX_INFLIGHT", "INGRESS_WRITE_TIMEOUT", "LOG_LEVEL", "INGRESS_LOG_ACCEPTED"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	if strings.Contains(err.Error(), "topsecretvalue") {
		t.Errorf("error echoes a secret: %v", err)
	}
}

// A body limit whose envelope could not be stored is refused at start, naming the variable.
func TestMaxBodyMustFitTheRawTopic(t *testing.T) {
	env := map[string]string{"INGRESS_MAX_BODY": "2MiB"}
	_, err := loadConfig(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "INGRESS_MAX_BODY") {
		t.Errorf("INGRESS_MAX_BODY=2MiB: err = %v, want a refusal naming it", err)
	}
	env["INGRESS_MAX_BODY"] = "1MiB"
	if _, err := loadConfig(func(k string) string { return env[k] }); err != nil && strings.Contains(err.Error(), "INGRESS_MAX_BODY") {
		t.Errorf("the default 1 MiB is refused: %v", err)
	}
}

// TestConfigConnectionAndSecretFiles: the ingress reads the common Kafka settings and its
// signing secrets from mounted files, and lists every problem at once.
func TestConfigConnectionAndSecretFiles(t *testing.T) {
	dir := t.TempDir()
	dwd, elm := dir+"/dwd", dir+"/elm"
	if err := os.WriteFile(dwd, []byte("s1,s2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(elm, []byte("62933118=e1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(envOf(map[string]string{
		"KAFKA_TLS": "true", "KAFKA_TLS_CERT_FILE": "/c", "KAFKA_TLS_KEY_FILE": "/k", "DIANWODA_SECRETS_FILE": dwd, "ELEME_SECRETS_FILE": elm,
	}))
	if err == nil || !strings.Contains(err.Error(), "KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE") {
		t.Fatalf("unreadable client certificate: %v", err)
	}
	c, err = loadConfig(envOf(map[string]string{"KAFKA_TLS": "true", "DIANWODA_SECRETS_FILE": dwd, "ELEME_SECRETS_FILE": elm}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.TLS == nil || len(c.DianwodaSecrets) != 2 || c.ElemeSecrets["62933118"][0] != "e1" {
		t.Fatalf("config = %+v", c)
	}
	_, err = loadConfig(envOf(map[string]string{"DIANWODA_SECRETS": "a", "DIANWODA_SECRETS_FILE": dwd, "KAFKA_SASL_MECHANISM": "plain",
		"TOPIC_REPLICATION_FACTOR": "zero"}))
	for _, w := range []string{"DIANWODA_SECRETS", "KAFKA_SASL_USERNAME", "TOPIC_REPLICATION_FACTOR"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error does not name %q: %v", w, err)
		}
	}
}
