package main

import (
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
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"KAFKA_BROKERS", "HTTP_ADDR", "ELEME_SECRETS: item 2", "INGRESS_MAX_INFLIGHT", "INGRESS_WRITE_TIMEOUT", "LOG_LEVEL"} {
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
