package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func secretFile(t *testing.T, v string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigEveryVariable sets every variable the normalizer reads, secrets through _FILE.
func TestConfigEveryVariable(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{
		"KAFKA_BROKERS": "k1:9093,k2:9093", "KAFKA_TLS": "true", "KAFKA_TLS_SERVER_NAME": "kafka.internal",
		"KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_SASL_USERNAME": "normalizer", "KAFKA_SASL_PASSWORD_FILE": secretFile(t, "kpw"),
		"TOPIC_REPLICATION_FACTOR": "5", "TOPIC_MIN_INSYNC_REPLICAS": "3", "TOPIC_AUTO_CREATE": "false", "TOPIC_PARTITIONS": "24",
		"OPS_ADDR": ":9000", "LOG_LEVEL": "debug",
		"REDIS_ADDR": "r1:6379,r2:6379,r3:6379", "REDIS_CLUSTER": "true", "REDIS_USERNAME": "normalizer", "REDIS_PASSWORD_FILE": secretFile(t, "rpw"),
		"REDIS_TLS": "true", "REDIS_POOL_SIZE": "64", "REDIS_DIAL_TIMEOUT": "1s", "REDIS_READ_TIMEOUT": "500ms", "REDIS_WRITE_TIMEOUT": "700ms",
		"TOPIC_RAW": "raw", "TOPIC_RAW_DLQ": "dlq", "TOPIC_STATUS": "status", "KAFKA_GROUP_ID": "g", "DEDUP_TTL": "24h",
		"REDIS_KEY_PREFIX": "p:", "BATCH_MAX_RECORDS": "500",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.TLS == nil || c.Kafka.TLS.ServerName != "kafka.internal" || c.Kafka.SASL == nil || c.Kafka.SASL.Name() != "SCRAM-SHA-512" ||
		len(c.Kafka.Brokers) != 2 || c.Replication.Factor != 5 || c.Replication.MinInsync != 3 || c.TopicAutoCreate || c.TopicPartitions != 24 ||
		c.OpsAddr != ":9000" || c.LogLevel != "debug" {
		t.Errorf("common part = %+v", c.Config)
	}
	if !c.Redis.Cluster || len(c.Redis.Addrs) != 3 || c.Redis.Username != "normalizer" || c.Redis.Password.Reveal() != "rpw" || !c.Redis.TLS ||
		c.Redis.PoolSize != 64 || c.Redis.DialTimeout != time.Second || c.Redis.ReadTimeout != 500*time.Millisecond || c.Redis.WriteTimeout != 700*time.Millisecond {
		t.Errorf("redis = %+v", c.Redis)
	}
	if c.TopicRaw != "raw" || c.TopicRawDLQ != "dlq" || c.TopicStatus != "status" || c.GroupID != "g" || c.DedupTTL != 24*time.Hour ||
		c.KeyPrefix != "p:" || c.BatchMax != 500 {
		t.Errorf("own part = %+v", c)
	}
}

// TestConfigConflictsListedAtOnce: problems of the common part, of Redis and of the service's
// own settings come back together, each named.
func TestConfigConflictsListedAtOnce(t *testing.T) {
	_, err := loadConfig(envOf(map[string]string{
		"KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_TLS_CA_FILE": "/ca.pem",
		"REDIS_CLUSTER": "true", "REDIS_MASTER_NAME": "m", "REDIS_DB": "1", "REDIS_PASSWORD": "x", "REDIS_PASSWORD_FILE": "/pw",
		"TOPIC_MIN_INSYNC_REPLICAS": "4", "DEDUP_TTL": "1s",
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, w := range []string{"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_TLS_CA_FILE", "REDIS_CLUSTER and REDIS_MASTER_NAME",
		"REDIS_CLUSTER and REDIS_DB", "REDIS_PASSWORD_FILE", "TOPIC_MIN_INSYNC_REPLICAS", "DEDUP_TTL"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not name %q:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "x\n") {
		t.Errorf("error holds a password: %v", err)
	}
}
