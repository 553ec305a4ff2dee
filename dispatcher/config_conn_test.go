package main

import (
	"strings"
	"testing"

	"github.com/orderpipe/pipeline/plumbing/redisio"
)

// TestConfigConnection: the dispatcher reads the common Kafka and Redis settings (Sentinel
// included: REDIS_MASTER_NAME used to be ignored), and lists their problems with its own.
func TestConfigConnection(t *testing.T) {
	cfg, err := loadConfig(envOf(map[string]string{
		"KAFKA_BROKERS": "k1:9093", "KAFKA_TLS": "true", "KAFKA_TLS_SERVER_NAME": "kafka.internal", "KAFKA_SASL_MECHANISM": "plain",
		"KAFKA_SASL_USERNAME": "dispatcher", "KAFKA_SASL_PASSWORD": "kpw", "TOPIC_REPLICATION_FACTOR": "3", "TOPIC_MIN_INSYNC_REPLICAS": "2",
		"REDIS_ADDR": "s1:26379,s2:26379,s3:26379", "REDIS_MASTER_NAME": "orderpipe", "REDIS_DB": "2", "REDIS_USERNAME": "dispatcher", "REDIS_PASSWORD": "rpw",
		// The embedded demo shop is only accepted against a sandbox (main's c3d2425).
		"DANGDANG_API_URL": "http://127.0.0.1:8090/openapi/rest",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.TLS == nil || cfg.Kafka.SASL == nil || cfg.Kafka.SASL.Name() != "PLAIN" || cfg.Redis.Mode() != redisio.ModeSentinel ||
		cfg.Redis.MasterName != "orderpipe" || len(cfg.Redis.Addrs) != 3 || cfg.Redis.DB != 2 || cfg.Replication.Factor != 3 {
		t.Fatalf("config = %+v", cfg.Config)
	}
	_, err = loadConfig(envOf(map[string]string{
		"KAFKA_SASL_MECHANISM": "kerberos", "REDIS_ADDR": "a:1,b:2", "DANGDANG_BATCH_SIZE": "101", "KAFKA_TLS_INSECURE_SKIP_VERIFY": "true",
	}))
	for _, w := range []string{"KAFKA_SASL_MECHANISM", "REDIS_ADDR", "DANGDANG_BATCH_SIZE", "KAFKA_TLS_INSECURE_SKIP_VERIFY"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error does not name %q: %v", w, err)
		}
	}
}
