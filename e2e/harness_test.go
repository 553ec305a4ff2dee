package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/e2e/stack"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

// binDir holds the service binaries, built once for the package by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "orderpipe-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-o", dir, "../ingress", "../normalizer", "../dispatcher", "../dispatcher/cmd/ddsandbox")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build services:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// topics are one test's own topic names, so tests sharing the broker never see each other.
type topics struct {
	Raw, RawDLQ, Status, Delivery, Lifecycle, Refund, Results, StatusDLQ string
}

func (tp topics) all() []string {
	return []string{tp.Raw, tp.RawDLQ, tp.Status, tp.Delivery, tp.Lifecycle, tp.Refund, tp.Results, tp.StatusDLQ}
}

func (tp topics) env() []string {
	return []string{
		"TOPIC_RAW=" + tp.Raw, "TOPIC_RAW_DLQ=" + tp.RawDLQ, "TOPIC_STATUS=" + tp.Status,
		"TOPIC_DELIVERY=" + tp.Delivery, "TOPIC_LIFECYCLE=" + tp.Lifecycle, "TOPIC_REFUND=" + tp.Refund,
		"TOPIC_DANGDANG_RESULTS=" + tp.Results, "TOPIC_STATUS_DLQ=" + tp.StatusDLQ,
	}
}

// pipeline is the three services and the Dangdang sandbox of one test, as separate processes.
type pipeline struct {
	t                                        *testing.T
	brokers                                  []string
	topics                                   topics
	ingressURL, sandboxURL                   string
	sandbox, ingress, normalizer, dispatcher *stack.Service
}

const (
	testDianwodaSecret = "e2e-dianwoda-secret"
	testElemeAppID     = "62933118"
	testElemeSecret    = "e2e-eleme-secret"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startPipeline starts the sandbox and the three services against the real Kafka and Redis, each
// with this test's own topics, consumer groups and Redis key prefix, and waits until all are ready.
func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	brokers := testenv.Kafka(t)
	redisAddr := testenv.Redis(t)
	tp := topics{
		Raw: testenv.Name(t, "raw"), RawDLQ: testenv.Name(t, "rawdlq"), Status: testenv.Name(t, "status"),
		Delivery: testenv.Name(t, "delivery"), Lifecycle: testenv.Name(t, "lifecycle"), Refund: testenv.Name(t, "refund"),
		Results: testenv.Name(t, "results"), StatusDLQ: testenv.Name(t, "statusdlq"),
	}
	testenv.Topics(t, brokers, 3, tp.all()...)
	prefix := testenv.Name(t, "redis") + ":"
	sandboxAddr, ingressAddr := freeAddr(t), freeAddr(t)
	ops := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	common := append([]string{
		"KAFKA_BROKERS=" + strings.Join(brokers, ","), "REDIS_ADDR=" + redisAddr, "REDIS_KEY_PREFIX=" + prefix,
		"LOG_LEVEL=debug", "TOPIC_AUTO_CREATE=false",
	}, tp.env()...)
	logs := t.TempDir()
	out := func(name string) *os.File {
		f, err := os.Create(filepath.Join(logs, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			f.Close()
			if t.Failed() {
				b, _ := os.ReadFile(f.Name())
				t.Logf("--- %s log ---\n%s", name, b)
			}
		})
		return f
	}
	p := &pipeline{t: t, brokers: brokers, topics: tp, ingressURL: "http://" + ingressAddr, sandboxURL: "http://" + sandboxAddr}
	p.sandbox = &stack.Service{Name: "ddsandbox", Bin: filepath.Join(binDir, "ddsandbox"),
		Env:      []string{"SANDBOX_ADDR=" + sandboxAddr, "SANDBOX_SHOPS=2100000000=test_secret"},
		ReadyURL: p.sandboxURL + "/sandbox/stats", Output: out("ddsandbox")}
	p.ingress = &stack.Service{Name: "ingress", Bin: filepath.Join(binDir, "ingress"),
		Env: append([]string{"HTTP_ADDR=" + ingressAddr, "OPS_ADDR=" + ops[0],
			"DIANWODA_SECRETS=" + testDianwodaSecret, "ELEME_SECRETS=" + testElemeAppID + "=" + testElemeSecret}, common...),
		ReadyURL: "http://" + ops[0] + "/readyz", Output: out("ingress")}
	p.normalizer = &stack.Service{Name: "normalizer", Bin: filepath.Join(binDir, "normalizer"),
		Env:      append([]string{"OPS_ADDR=" + ops[1], "KAFKA_GROUP_ID=" + testenv.Name(t, "normalizer")}, common...),
		ReadyURL: "http://" + ops[1] + "/readyz", Output: out("normalizer")}
	p.dispatcher = &stack.Service{Name: "dispatcher", Bin: filepath.Join(binDir, "dispatcher"),
		Env: append([]string{"OPS_ADDR=" + ops[2], "KAFKA_GROUP_ID=" + testenv.Name(t, "dispatcher"),
			"DANGDANG_API_URL=" + p.sandboxURL + "/openapi/rest", "DANGDANG_BATCH_WINDOW=200ms"}, common...),
		ReadyURL: "http://" + ops[2] + "/readyz", Output: out("dispatcher")}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, s := range []*stack.Service{p.sandbox, p.ingress, p.normalizer, p.dispatcher} {
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Stop(20 * time.Second); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
	for _, s := range []*stack.Service{p.sandbox, p.ingress, p.normalizer, p.dispatcher} {
		if err := s.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// post sends a callback and returns the status code and body of the reply.
func post(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, strings.TrimSpace(buf.String())
}

// consume reads topic from the beginning until match has accepted want records or the deadline
// passes, and returns the matching records.
func consume(t *testing.T, brokers []string, topic string, want int, match func(kafka.Message) bool) []kafka.Message {
	t.Helper()
	r := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: brokers, GroupID: testenv.Name(t, "reader"), Topic: topic})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got []kafka.Message
	for len(got) < want {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("topic %s: got %d of %d records: %v", topic, len(got), want, err)
		}
		if match(m) {
			got = append(got, m)
		}
	}
	return got
}

func decodeEvent(t *testing.T, m kafka.Message) schemas.StatusEvent {
	t.Helper()
	var ev schemas.StatusEvent
	if err := json.Unmarshal(m.Value, &ev); err != nil {
		t.Fatalf("decode status event %s: %v", m.Value, err)
	}
	return ev
}
