package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/dispatcher/internal/ddsandbox"
	"github.com/orderpipe/pipeline/dispatcher/internal/writeback"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

// harness is one isolated dispatcher setup: its own topics, group, Redis prefix and sandbox.
type harness struct {
	t       testing.TB
	brokers []string
	env     map[string]string
	sb      *ddsandbox.Sandbox
	in      *kafka.Writer
}

var demoShop = ddsandbox.Shop{AppKey: "2100000000", Secret: "test_secret", Session: "SESSIONKEY"}

func newHarness(t testing.TB, overrides map[string]string) *harness {
	t.Helper()
	brokers := testenv.Kafka(t)
	redisAddr := testenv.Redis(t)
	sb := ddsandbox.New(demoShop)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	h := &harness{t: t, brokers: brokers, sb: sb}
	h.env = map[string]string{
		"KAFKA_BROKERS":               strings.Join(brokers, ","),
		"REDIS_ADDR":                  redisAddr,
		"REDIS_KEY_PREFIX":            testenv.Name(t, "op") + ":",
		"OPS_ADDR":                    "127.0.0.1:0",
		"LOG_LEVEL":                   "warn",
		"KAFKA_GROUP_ID":              testenv.Name(t, "group"),
		"TOPIC_STATUS":                testenv.Name(t, "status"),
		"TOPIC_DELIVERY":              testenv.Name(t, "delivery"),
		"TOPIC_LIFECYCLE":             testenv.Name(t, "lifecycle"),
		"TOPIC_REFUND":                testenv.Name(t, "refund"),
		"TOPIC_DANGDANG_RESULTS":      testenv.Name(t, "results"),
		"TOPIC_STATUS_DLQ":            testenv.Name(t, "dlq"),
		"TOPIC_AUTO_CREATE":           "false",
		"DANGDANG_API_URL":            srv.URL + "/openapi/rest",
		"DANGDANG_BATCH_WINDOW":       "300ms",
		"DANGDANG_TIMEOUT":            "3s",
		"DANGDANG_BACKOFF_MIN":        "10ms",
		"DANGDANG_BACKOFF_MAX":        "50ms",
		"DANGDANG_RATE_LIMIT_BACKOFF": "50ms",
		"DANGDANG_MAX_ATTEMPTS":       "6",
		"DANGDANG_PAUSE_PROBE":        "200ms",
		"COMMIT_INTERVAL":             "100ms",
		"SHUTDOWN_GRACE":              "5s",
	}
	for k, v := range overrides {
		h.env[k] = v
	}
	specs := []kafkaio.TopicSpec{{Name: h.env["TOPIC_STATUS"], Partitions: 3}}
	for _, k := range []string{"TOPIC_DELIVERY", "TOPIC_LIFECYCLE", "TOPIC_REFUND", "TOPIC_DANGDANG_RESULTS", "TOPIC_STATUS_DLQ"} {
		specs = append(specs, kafkaio.TopicSpec{Name: h.env[k], Partitions: 1})
	}
	// The shared broker is busy while other work runs: retry a transient refusal.
	var err error
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = kafkaio.EnsureTopics(ctx, brokers, specs...)
		cancel()
		if err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
	h.in = kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: brokers, Topic: h.env["TOPIC_STATUS"]})
	t.Cleanup(func() {
		h.in.Close()
		h.in.Transport.(*kafka.Transport).CloseIdleConnections()
	})
	return h
}

// start runs the dispatcher; the returned stop cancels it and returns run's error.
func (h *harness) start() (stop func() error) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	logs := &testenv.Buffer{}
	h.t.Cleanup(func() {
		if h.t.Failed() {
			h.t.Logf("dispatcher log:\n%s", logs.String())
		}
	})
	go func() { errc <- run(ctx, func(k string) string { return h.env[k] }, logs) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(30 * time.Second):
				err = fmt.Errorf("dispatcher did not stop within 30s")
			}
		})
		return err
	}
	h.t.Cleanup(func() { _ = stop() })
	return stop
}

var seq int

func event(platform, orderID, status string, occurred time.Time) schemas.StatusEvent {
	seq++
	return schemas.StatusEvent{
		EventID: fmt.Sprintf("ev-%s-%s-%d", orderID, status, seq), Platform: platform, Kind: schemas.KindDelivery,
		OrderID: orderID, Status: status, PlatformStatus: status, Terminal: status == schemas.StatusDelivered || status == schemas.StatusDeliveryFailed,
		OccurredAt: schemas.At(occurred), ReceivedAt: schemas.At(occurred),
	}
}

func (h *harness) produce(evs ...schemas.StatusEvent) {
	h.t.Helper()
	msgs := make([]kafka.Message, len(evs))
	for i, ev := range evs {
		v, err := json.Marshal(ev)
		if err != nil {
			h.t.Fatal(err)
		}
		msgs[i] = kafka.Message{Key: []byte(schemas.Key(ev.Platform, ev.OrderID)), Value: v, Headers: []kafka.Header{
			{Key: schemas.HeaderCEID, Value: []byte(ev.EventID)}, {Key: schemas.HeaderContentType, Value: []byte("application/json")}}}
	}
	h.write(msgs)
}

// write produces msgs, retrying only the ones that failed (a topic created a moment ago may not
// have its leaders yet).
func (h *harness) write(msgs []kafka.Message) {
	h.t.Helper()
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := h.in.WriteMessages(ctx, msgs...)
		cancel()
		if err == nil {
			return
		}
		if attempt == 20 {
			h.t.Fatal(err)
		}
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(msgs) {
			var failed []kafka.Message
			for i, e := range werrs {
				if e != nil {
					failed = append(failed, msgs[i])
				}
			}
			msgs = failed
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// read returns every record of a one-partition topic written so far, waiting until until says
// it has enough or the timeout passes.
func (h *harness) read(topicEnv string, timeout time.Duration, until func([]kafka.Message) bool) []kafka.Message {
	h.t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: h.brokers, Topic: h.env[topicEnv], Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []kafka.Message
	deadline := time.Now().Add(timeout)
	for !until(out) && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			break
		}
		out = append(out, m)
	}
	return out
}

func results(t testing.TB, msgs []kafka.Message) []writeback.Result {
	t.Helper()
	out := make([]writeback.Result, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Value, &out[i]); err != nil {
			t.Fatalf("result %d: %v", i, err)
		}
		if string(m.Key) != out[i].DangdangOrderID {
			t.Fatalf("result key %q != dangdang_order_id %q", m.Key, out[i].DangdangOrderID)
		}
	}
	return out
}

// committed returns the group's committed offsets summed over the input topic's partitions, or
// -1 when the broker did not answer (it is shared and sometimes busy).
func (h *harness) committed() int64 {
	h.t.Helper()
	tr := kafkaio.NewTransport()
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(h.brokers...), Timeout: 5 * time.Second, Transport: tr}
	resp, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: h.env["KAFKA_GROUP_ID"],
		Topics: map[string][]int{h.env["TOPIC_STATUS"]: {0, 1, 2}}})
	if err != nil || resp.Error != nil {
		return -1
	}
	var sum int64
	for _, p := range resp.Topics[h.env["TOPIC_STATUS"]] {
		if p.Error != nil {
			return -1
		}
		if p.CommittedOffset > 0 {
			sum += p.CommittedOffset
		}
	}
	return sum
}

func writeFile(t testing.TB, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
