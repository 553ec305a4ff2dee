package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.OpsAddr != ":8082" || c.GroupID != "normalizer" || c.DedupTTL != 168*time.Hour || c.KeyPrefix != "op:" ||
		c.TopicRaw != schemas.TopicRaw || c.TopicStatus != schemas.TopicStatus || c.TopicRawDLQ != schemas.TopicRawDLQ ||
		!c.TopicAutoCreate || c.TopicPartitions != 12 || c.Kafka.Brokers[0] != "127.0.0.1:9092" || c.Redis.Addrs[0] != "127.0.0.1:6379" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadConfigListsEveryProblem(t *testing.T) {
	_, err := loadConfig(envOf(map[string]string{
		"KAFKA_BROKERS": "nohostport", "DEDUP_TTL": "7d", "BATCH_MAX_RECORDS": "0", "LOG_LEVEL": "loud",
		"TOPIC_AUTO_CREATE": "maybe", "OPS_ADDR": "8082", "TOPIC_STATUS": schemas.TopicRaw,
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"KAFKA_BROKERS", "DEDUP_TTL", "BATCH_MAX_RECORDS", "LOG_LEVEL", "TOPIC_AUTO_CREATE", "OPS_ADDR", "TOPIC_STATUS"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRunStartsWithoutDependencies: with Kafka and Redis unreachable the service starts, is live
// and not ready, and stops cleanly.
func TestRunStartsWithoutDependencies(t *testing.T) {
	ops := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, envOf(map[string]string{"KAFKA_BROKERS": "127.0.0.1:1", "REDIS_ADDR": "127.0.0.1:1", "OPS_ADDR": ops}), io.Discard)
	}()
	waitFor(t, "healthz", 10*time.Second, func() bool { c, _ := get("http://" + ops + "/healthz"); return c == 200 })
	if c, body := get("http://" + ops + "/readyz"); c != http.StatusServiceUnavailable {
		t.Fatalf("readyz %d %s, want 503", c, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop")
	}
}

// TestRunNormalizes wires the real service to the real Kafka and Redis: it creates its topics,
// turns a raw record into a status event with CloudEvents headers, and reports ready.
func TestRunNormalizes(t *testing.T) {
	brokers := testenv.Kafka(t)
	redisAddr := testenv.Redis(t)
	raw, status, dlq := testenv.Name(t, "raw"), testenv.Name(t, "status"), testenv.Name(t, "dlq")
	ops := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, envOf(map[string]string{
			"KAFKA_BROKERS": strings.Join(brokers, ","), "REDIS_ADDR": redisAddr, "OPS_ADDR": ops,
			"TOPIC_RAW": raw, "TOPIC_STATUS": status, "TOPIC_RAW_DLQ": dlq, "TOPIC_PARTITIONS": "2",
			"KAFKA_GROUP_ID": testenv.Name(t, "g"), "REDIS_KEY_PREFIX": testenv.Name(t, "op") + ":", "LOG_LEVEL": "warn",
		}), io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, "readyz", 30*time.Second, func() bool { c, _ := get("http://" + ops + "/readyz"); return c == 200 })

	body := `{"content":{"order_original_id":"M1","order_status":"completed","action_code":"customer_sign","time_status_update":1429861697905},"deliver_times":1,"msg_id":"x","pub_time":1}`
	v, _ := json.Marshal(schemas.RawEnvelope{Version: 1, IngressID: "i", Platform: "dianwoda", OrderID: "M1", ReceivedAt: schemas.UnixMilli(1), Body: []byte(body)})
	w := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: brokers, Topic: raw})
	defer w.Close()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	var err error
	for i := 0; i < 50; i++ { // the topic was created by run a moment ago
		if err = w.WriteMessages(wctx, kafka.Message{Key: []byte("dianwoda:M1"), Value: v}); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	r := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: brokers, GroupID: testenv.Name(t, "read"), Topic: status})
	defer r.Close()
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	defer rcancel()
	m, err := r.FetchMessage(rctx)
	if err != nil {
		t.Fatal(err)
	}
	var ev schemas.StatusEvent
	if err := json.Unmarshal(m.Value, &ev); err != nil || ev.Status != schemas.StatusDelivered || kafkaio.Header(m, schemas.HeaderCEID) != ev.EventID {
		t.Fatalf("event %s (%v), ce_id %q", m.Value, err, kafkaio.Header(m, schemas.HeaderCEID))
	}
	var metrics string
	waitFor(t, "the batch's commit", 30*time.Second, func() bool {
		_, metrics = get("http://" + ops + "/metrics")
		return strings.Contains(metrics, "normalizer_records_committed_total 1")
	})
	for _, name := range []string{"normalizer_records_consumed_total", "normalizer_events_emitted_total", "normalizer_processing_seconds", "normalizer_consumer_lag_records"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
