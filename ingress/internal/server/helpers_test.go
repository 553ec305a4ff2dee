package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/orderpipe/pipeline/ingress/internal/dianwoda"
	"github.com/orderpipe/pipeline/ingress/internal/eleme"
	"github.com/orderpipe/pipeline/ingress/internal/publish"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/ops"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

const (
	dwdSecret = "dwd-secret-value"
	elmApp    = "62933118"
	elmSecret = "eleme-secret-value"
)

type rig struct {
	url     string
	brokers []string
	topic   string
	logs    *testenv.Buffer
	reg     *prometheus.Registry
	srv     *Server
	pub     *publish.Publisher // the publisher newRig made (an option may wrap it)
}

type rigOpt func(*Config)

// newRig serves the real router over HTTP, writing to a topic of its own on the real broker.
func newRig(t *testing.T, opts ...rigOpt) *rig {
	t.Helper()
	brokers := testenv.Kafka(t)
	topic := testenv.Name(t, "raw")
	createTopic(t, brokers, topic, 1)
	w := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: brokers, Topic: topic})
	reg := prometheus.NewRegistry()
	pub := publish.New(w, publish.Config{MaxInflight: 64, WriteTimeout: 10 * time.Second}, ops.NewReadiness(), reg)
	t.Cleanup(func() { _ = pub.Close() })
	logs := &testenv.Buffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logs), zap.DebugLevel))
	cfg := Config{
		MaxBody:         1 << 10,
		DianwodaSecrets: []string{"old-secret", dwdSecret},
		ElemeSecrets:    map[string][]string{elmApp: {elmSecret}},
		Publisher:       pub,
		Log:             log,
		Registry:        reg,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv := New(cfg)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &rig{url: hs.URL, brokers: brokers, topic: topic, logs: logs, reg: reg, srv: srv, pub: pub}
}

// dwdQuery signs body as Dianwoda does.
func dwdQuery(body, secret string) url.Values {
	nonce, ts := "123456", "1545188246307"
	return url.Values{"type": {dianwoda.TypeStatusUpdate}, "timestamp": {ts}, "nonce": {nonce},
		"sign": {dianwoda.Sign(nonce, ts, dianwoda.TypeStatusUpdate, []byte(body), secret)}}
}

// elmBody returns an Eleme push around message, signed with secret.
func elmBody(t *testing.T, typ int, message, secret string) string {
	t.Helper()
	unsigned := `{"appId":` + elmApp + `,"requestId":"10135","type":` + strconv.Itoa(typ) + `,"message":` + quote(message) + `,"shopId":968861,"timestamp":1482161482053,"userId":100452735447201579}`
	sig, err := eleme.SignBody([]byte(unsigned), secret)
	if err != nil {
		t.Fatal(err)
	}
	return unsigned[:len(unsigned)-1] + `,"signature":"` + sig + `"}`
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

type reply struct {
	status int
	body   string
	header http.Header
}

func (r *rig) post(t *testing.T, path string, q url.Values, body string, hdr ...string) reply {
	t.Helper()
	u := r.url + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{status: res.StatusCode, body: string(b), header: res.Header}
}

// records reads every record of the rig's single-partition topic.
func (r *rig) records(t *testing.T) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", r.brokers[0], r.topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	last, err := conn.ReadLastOffset()
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if last == 0 {
		return nil
	}
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: r.brokers, Topic: r.topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	var out []kafka.Message
	for int64(len(out)) < last {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read back %d of %d: %v", len(out), last, err)
		}
		out = append(out, m)
	}
	return out
}

func envelopeOf(t *testing.T, m kafka.Message) schemas.RawEnvelope {
	t.Helper()
	var env schemas.RawEnvelope
	if err := json.Unmarshal(m.Value, &env); err != nil {
		t.Fatalf("record value is not an envelope: %v\n%s", err, m.Value)
	}
	return env
}

// createTopic is testenv.Topics with retries: the shared test broker, busy with every helper's
// tests, sometimes answers CreateTopics with "Broker Not Available".
func createTopic(t testing.TB, brokers []string, name string, partitions int) {
	t.Helper()
	var err error
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = kafkaio.EnsureTopics(ctx, brokers, kafkaio.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: 1})
		cancel()
		if err == nil {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("create topic %s: %v", name, err)
}
