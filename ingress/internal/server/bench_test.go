package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/orderpipe/pipeline/ingress/internal/publish"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/ops"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

type discard struct{}

func (discard) Publish(context.Context, kafka.Message) error { return nil }

func benchServer(b *testing.B, pub Publisher) http.Handler {
	return New(Config{
		MaxBody: 1 << 20, DianwodaSecrets: []string{dwdSecret}, ElemeSecrets: map[string][]string{elmApp: {elmSecret}},
		Publisher: pub, Log: zap.NewNop(), Registry: prometheus.NewRegistry(),
	}).Handler()
}

// BenchmarkHandler is the ingress's own CPU per callback: router, middleware, verification,
// keying and the envelope, with a publisher that drops the record (Kafka excluded).
//
//	go test -run=^$ -bench=Handler -benchmem ./internal/server
func BenchmarkHandler(b *testing.B) {
	benchCallbacks(b, benchServer(b, discard{}), http.StatusOK)
}

// benchCallbacks runs one signed callback of each platform through h, every reply want.
func benchCallbacks(b *testing.B, h http.Handler, want int) {
	t := &testing.T{}
	elm := elmBody(t, 56, `{"orderId":"1201961795738011871","state":"completed","subState":"noSubstate","shopId":968861,"name":"张三","phone":"13600000000","updateAt":1482161481000}`, elmSecret)
	q := dwdQuery(dwdBody, dwdSecret).Encode()
	for _, bc := range []struct{ name, url, body string }{
		{"dianwoda", PathDianwoda + "?" + q, dwdBody},
		{"eleme", PathEleme, elm},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, bc.url, strings.NewReader(bc.body)))
				if rec.Code != want {
					b.Fatal(rec.Code, rec.Body.String())
				}
			}
		})
	}
}

// BenchmarkHandlerKafka adds the synchronous acks=all write to the real broker, from parallel
// callers (as HTTP requests would be), through the Producer main uses (one request per broker)
// and, for comparison, through kafka.Writer (one request per partition batch).
//
//	KAFKA_BROKERS=127.0.0.1:39092 go test -run=^$ -bench=HandlerKafka -benchmem ./internal/server
func BenchmarkHandlerKafka(b *testing.B) {
	b.Run("producer", func(b *testing.B) {
		brokers := testenv.Kafka(b)
		topic := testenv.Name(b, "bench")
		createTopic(b, brokers, topic, 12)
		tr := kafkaio.NewTransport()
		tr.MetadataTopics = []string{topic} // as main does
		benchHandlerKafka(b, kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topic: topic, Transport: tr}))
	})
	b.Run("writer", func(b *testing.B) {
		brokers := testenv.Kafka(b)
		topic := testenv.Name(b, "bench")
		createTopic(b, brokers, topic, 12)
		w := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: brokers, Topic: topic, BatchSize: 64})
		w.Transport.(*kafka.Transport).MetadataTopics = []string{topic}
		benchHandlerKafka(b, w)
	})
}

func benchHandlerKafka(b *testing.B, w publish.Writer) {
	pub := publish.New(w, publish.Config{MaxInflight: 1024, WriteTimeout: 10 * time.Second}, ops.NewReadiness(), prometheus.NewRegistry())
	defer pub.Close()
	h := benchServer(b, pub)
	q := dwdQuery(dwdBody, dwdSecret).Encode()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathDianwoda+"?"+q, strings.NewReader(dwdBody)))
			if rec.Code != 200 {
				b.Error(rec.Code, rec.Body.String())
				return
			}
		}
	})
}

// busyPublisher refuses every write as an ingress at its bound of writes in flight does.
type busyPublisher struct{}

func (busyPublisher) Publish(context.Context, kafka.Message) error { return publish.ErrBusy }
func (busyPublisher) Admit() error                                 { return publish.ErrBusy }

// BenchmarkShed is the ingress's own CPU per callback it refuses because its Kafka writes are at
// their bound (busy), against BenchmarkHandler's accepted one: what a platform's retries cost
// an overloaded ingress. The access lines are JSON-encoded (to io.Discard) as in production.
//
//	go test -run=^$ -bench='Handler$|Shed' -benchmem ./internal/server
func BenchmarkShed(b *testing.B) {
	enc := zap.NewProductionEncoderConfig()
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	h := New(Config{
		MaxBody: 1 << 20, DianwodaSecrets: []string{dwdSecret}, ElemeSecrets: map[string][]string{elmApp: {elmSecret}},
		Publisher: busyPublisher{}, Log: log, Registry: prometheus.NewRegistry(),
	}).Handler()
	benchCallbacks(b, h, http.StatusServiceUnavailable)
}
