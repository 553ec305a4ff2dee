package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/e2e/callbacks"
	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

// TestWalkingSkeleton drives one signed Dianwoda "completed" callback of a Dangdang-routed order
// through every hop, each a separate process on the real broker and Redis, and checks the content
// at each: the ingress's reply, the raw record, the unified event, its fan-out copy, the Dangdang
// result record, and the sandbox's own state of the order.
func TestWalkingSkeleton(t *testing.T) { walkingSkeleton(t, startPipeline(t)) }

// TestWalkingSkeletonOn runs the walking skeleton on the infrastructure companies operate:
// SASL_SSL Kafka (SCRAM-SHA-512) with TLS + ACL Redis, a Redis Sentinel group, a Redis Cluster.
// The services are separate processes configured only through their environment.
func TestWalkingSkeletonOn(t *testing.T) {
	tests := []struct {
		name string
		conn func(t *testing.T) *connection
	}{
		{"SASL_SSL Kafka and TLS+ACL Redis", func(t *testing.T) *connection {
			k, r := testenv.SecureKafka(t), testenv.RedisTLS(t)
			env := []string{
				"KAFKA_BROKERS=" + strings.Join(k.SASLSSLBrokers, ","), "KAFKA_TLS=true", "KAFKA_TLS_CA_FILE=" + k.CAFile,
				"KAFKA_SASL_MECHANISM=scram-sha-512", "KAFKA_SASL_USERNAME=" + k.Username, "KAFKA_SASL_PASSWORD_FILE=" + secretFile(t, k.Password),
				"REDIS_ADDR=" + r.Addr, "REDIS_TLS=true", "REDIS_TLS_CA_FILE=" + r.CAFile, "REDIS_USERNAME=" + r.Username,
				"REDIS_PASSWORD_FILE=" + secretFile(t, r.Password),
			}
			return &connection{kafka: connOf(t, env), env: env}
		}},
		{"Redis Sentinel", func(t *testing.T) *connection {
			s := testenv.RedisSentinel(t)
			brokers := testenv.Kafka(t)
			return &connection{kafka: kafkaio.Plaintext(brokers...), env: []string{"KAFKA_BROKERS=" + strings.Join(brokers, ","),
				"REDIS_ADDR=" + strings.Join(s.Addrs, ","), "REDIS_MASTER_NAME=" + s.MasterName}}
		}},
		{"Redis Cluster", func(t *testing.T) *connection {
			addrs := testenv.RedisCluster(t)
			brokers := testenv.Kafka(t)
			return &connection{kafka: kafkaio.Plaintext(brokers...), env: []string{"KAFKA_BROKERS=" + strings.Join(brokers, ","),
				"REDIS_ADDR=" + strings.Join(addrs, ","), "REDIS_CLUSTER=true"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			walkingSkeleton(t, startStack(t, stackOpts{secure: tt.conn(t)}))
		})
	}
}

// connOf is the Kafka connection the services build from env, for the test's own reads.
func connOf(t *testing.T, env []string) kafkaio.Conn {
	t.Helper()
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	l := envconfig.New(func(k string) string { return m[k] })
	c := kafkaio.LoadConn(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

// secretFile writes a secret to a file of the test's own, as a mounted secret would be.
func secretFile(t *testing.T, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func walkingSkeleton(t *testing.T, p *pipeline) {
	occurred := time.Date(2026, 11, 22, 12, 30, 15, 905_000_000, time.UTC)
	cb := callbacks.NewDianwoda(testDianwodaSecret, callbacks.DianwodaContent{
		OrderOriginalID: "DD1719544796", OrderStatus: "completed", ActionCode: "customer_sign",
		RiderCode: "10088", RiderName: "张德顺", RiderMobile: "13600000000", TimeStatusUpdate: occurred.UnixMilli(),
	}, "67798ea556724ee499b3aa65a3274047", 1, occurred.UnixMilli()+120, "884422")

	// Hop 1: the ingress answers Dianwoda's success only after the raw record is in Kafka.
	// The platform's request carries W3C trace context; it must reach the Dangdang call.
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	send := func() (int, string) {
		req, err := http.NewRequest(http.MethodPost, p.ingressURL+"/v1/callbacks/dianwoda?"+cb.Query.Encode(), bytes.NewReader(cb.Body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
		reply, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := io.ReadAll(reply.Body)
		reply.Body.Close()
		return reply.StatusCode, strings.TrimSpace(string(rb))
	}
	// A 503 ("not stored, retry later") is a legitimate answer on a broker that has just created
	// the topics; Dianwoda retries it, and so does this test, for a bounded time.
	code, body := send()
	for deadline := time.Now().Add(15 * time.Second); code == http.StatusServiceUnavailable && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		code, body = send()
	}
	if code != http.StatusOK || body != `{"code":"success"}` {
		t.Fatalf("ingress reply = %d %s, want 200 {\"code\":\"success\"}", code, body)
	}

	// Hop 2: callbacks.raw.v1 holds the body byte for byte, keyed platform:order_id.
	raw := consume(t, p.kafka, p.topics.Raw, 1, func(kafka.Message) bool { return true })[0]
	if got, want := string(raw.Key), "dianwoda:DD1719544796"; got != want {
		t.Errorf("raw key = %q, want %q", got, want)
	}
	var env schemas.RawEnvelope
	if err := json.Unmarshal(raw.Value, &env); err != nil {
		t.Fatalf("decode raw envelope: %v", err)
	}
	if !bytes.Equal(env.Body, cb.Body) {
		t.Errorf("raw body changed:\n got %s\nwant %s", env.Body, cb.Body)
	}
	if env.Version != schemas.RawEnvelopeVersion || env.Platform != "dianwoda" || env.OrderID != "DD1719544796" || env.IngressID == "" {
		t.Errorf("raw envelope = %+v", env)
	}
	if q := url.Values(env.Query); q.Get("sign") == "" || q.Get("nonce") != "884422" {
		t.Errorf("raw envelope query = %v, want the query as sent", env.Query)
	}

	// Hop 3: one unified event on orders.status.v1, with the CloudEvents headers.
	st := consume(t, p.kafka, p.topics.Status, 1, func(kafka.Message) bool { return true })[0]
	ev := decodeEvent(t, st)
	want := schemas.StatusEvent{
		Platform: "dianwoda", Kind: schemas.KindDelivery, OrderID: "DD1719544796",
		Status: schemas.StatusDelivered, PlatformStatus: "completed", Terminal: true,
	}
	if ev.Platform != want.Platform || ev.Kind != want.Kind || ev.OrderID != want.OrderID ||
		ev.Status != want.Status || ev.PlatformStatus != want.PlatformStatus || ev.Terminal != want.Terminal || ev.Stale {
		t.Errorf("status event = %+v, want %+v", ev, want)
	}
	if got := ev.OccurredAt.String(); got != "2026-11-22T12:30:15.905Z" {
		t.Errorf("occurred_at = %s, want 2026-11-22T12:30:15.905Z", got)
	}
	if ev.EventID == "" || kafkaio.Header(st, schemas.HeaderCEID) != ev.EventID ||
		kafkaio.Header(st, schemas.HeaderCESpecVersion) != "1.0" || kafkaio.Header(st, schemas.HeaderCETime) != ev.OccurredAt.String() {
		t.Errorf("event id %q, headers %v: want ce_id = event_id, ce_specversion 1.0, ce_time = occurred_at", ev.EventID, st.Headers)
	}
	if string(st.Key) != "dianwoda:DD1719544796" {
		t.Errorf("status key = %q", st.Key)
	}
	if ev.Rider == nil || ev.Rider.Phone != "13600000000" || ev.Reason == nil || ev.Reason.Code != "customer_sign" {
		t.Errorf("rider/reason not carried: rider %+v reason %+v", ev.Rider, ev.Reason)
	}

	// Hop 4: the dispatcher routed it to orders.delivery.v1 …
	dl := consume(t, p.kafka, p.topics.Delivery, 1, func(kafka.Message) bool { return true })[0]
	if got := decodeEvent(t, dl); got.EventID != ev.EventID {
		t.Errorf("orders.delivery.v1 event id = %s, want %s", got.EventID, ev.EventID)
	}

	// … and wrote it back to Dangdang: a result record for Dangdang order 1719544796, accepted …
	res := consume(t, p.kafka, p.topics.Results, 1, func(m kafka.Message) bool { return string(m.Key) == "1719544796" })[0]
	var result schemas.DangdangResult
	if err := json.Unmarshal(res.Value, &result); err != nil {
		t.Fatalf("decode result %s: %v", res.Value, err)
	}
	if result.Outcome != schemas.DangdangAccepted || result.DistriStatus != "1" || result.OrderOperCode != "0" ||
		len(result.EventIDs) != 1 || result.EventIDs[0] != ev.EventID {
		t.Errorf("dangdang result = %s, want accepted, distriStatus 1, code 0, covering %s", res.Value, ev.EventID)
	}

	// … which the sandbox, over HTTP with a verified sign, holds as delivered.
	resp, err := http.Get(p.sandboxURL + "/sandbox/orders/2100000000/1719544796")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sb, _ := io.ReadAll(resp.Body)
	// The Dangdang call that carried the order continued the callback's trace.
	calls, err := http.Get(p.sandboxURL + "/sandbox/calls")
	if err != nil {
		t.Fatal(err)
	}
	defer calls.Body.Close()
	var log []struct {
		Orders      []string `json:"orders"`
		Outcome     string   `json:"outcome"`
		Traceparent string   `json:"traceparent"`
	}
	if err := json.NewDecoder(calls.Body).Decode(&log); err != nil || len(log) != 1 {
		t.Fatalf("sandbox calls = %+v, %v; want exactly one", log, err)
	}
	if c := log[0]; c.Outcome != "ok" || len(c.Orders) != 1 || c.Orders[0] != "1719544796" || !strings.Contains(c.Traceparent, "-"+traceID+"-") {
		t.Errorf("dangdang call = %+v, want order 1719544796 with trace %s", c, traceID)
	}

	var order struct {
		DistriStatus int `json:"distri_status"`
		Accepted     int `json:"accepted"`
	}
	if err := json.Unmarshal(sb, &order); err != nil || order.DistriStatus != 1 || order.Accepted != 1 {
		t.Errorf("sandbox order 1719544796 = %d %s, want distri_status 1 accepted once", resp.StatusCode, sb)
	}
}
