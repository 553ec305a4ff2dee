package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/e2e/stack"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

// binDir holds the service binaries, built once for the package by TestMain.
var binDir string

func TestMain(m *testing.M) {
	// The system benchmark runs its load generator as this binary again (driveOpenProcess).
	if spec := os.Getenv("E2E_OPENLOAD"); spec != "" {
		os.Exit(openLoadMain(spec))
	}
	dir, err := os.MkdirTemp("", "orderpipe-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	if err := stack.Build("..", dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
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
	kafka                                    kafkaio.Conn // the test's own reads and topic set-up
	redisAddr                                string
	topics                                   topics
	partitions                               int
	ingressURL, sandboxURL                   string
	sandbox, ingress, normalizer, dispatcher *stack.Service
	// extra holds instances added with addNormalizer / addDispatcher (same consumer groups).
	extra    []*stack.Service
	common   []string
	extraEnv map[string][]string // by kind: stackOpts' normalizerEnv, dispatcherEnv
	groups   [2]string           // normalizer, dispatcher consumer groups
	logs     string
	nextName int
}

const (
	testDianwodaSecret = "e2e-dianwoda-secret"
	testElemeAppID     = "62933118"
	testElemeSecret    = "e2e-eleme-secret"
)

// freeAddr is a free address for a service. Below the ephemeral port range: a service killed and
// restarted must find its port free, not taken by a client's outgoing connection.
func freeAddr(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(testenv.FreeLowPorts(t, 1))
}

// stackOpts vary the pipeline a test starts.
type stackOpts struct {
	brokers   []string // default testenv.Kafka
	redisAddr string   // default testenv.Redis
	// secure, when set, is how the services and the test reach Kafka and Redis instead
	// (brokers and redisAddr are then ignored).
	secure     *connection
	partitions int // default 3
	// dispatcherEnv is added to the dispatcher's environment; ingressEnv to the ingress's,
	// normalizerEnv to the normalizer's.
	dispatcherEnv, ingressEnv, normalizerEnv []string
	// quiet logs at info level instead of debug (long runs).
	quiet bool
	// logDir keeps the processes' logs (name.log) after the test; default a temporary directory.
	logDir string
}

// startPipeline starts the sandbox and the three services against the real Kafka and Redis, each
// with this test's own topics, consumer groups and Redis key prefix, and waits until all are ready.
func startPipeline(t *testing.T) *pipeline { return startStack(t, stackOpts{}) }

// startStack is startPipeline with options.
func startStack(t *testing.T, o stackOpts) *pipeline {
	t.Helper()
	brokers, redisAddr := o.brokers, o.redisAddr
	if o.secure == nil {
		if brokers == nil {
			brokers = testenv.Kafka(t)
		}
		if redisAddr == "" {
			redisAddr = testenv.Redis(t)
		}
		o.secure = &connection{kafka: kafkaio.Plaintext(brokers...), env: []string{"KAFKA_BROKERS=" + strings.Join(brokers, ","), "REDIS_ADDR=" + redisAddr}}
	}
	brokers = o.secure.kafka.Brokers
	if o.partitions == 0 {
		o.partitions = 3
	}
	tp := newTopics(t)
	createTopics(t, o.secure.kafka, o.partitions, tp.all()...)
	prefix := testenv.Name(t, "redis") + ":"
	sandboxAddr, ingressAddr := freeAddr(t), freeAddr(t)
	level := "debug"
	if o.quiet {
		level = "info"
	}
	common := append(append([]string{
		"REDIS_KEY_PREFIX=" + prefix, "LOG_LEVEL=" + level, "TOPIC_AUTO_CREATE=false",
	}, o.secure.env...), tp.env()...)
	if o.logDir == "" {
		o.logDir = t.TempDir()
	}
	p := &pipeline{t: t, brokers: brokers, kafka: o.secure.kafka, redisAddr: redisAddr, topics: tp, partitions: o.partitions,
		ingressURL: "http://" + ingressAddr, sandboxURL: "http://" + sandboxAddr, logs: o.logDir,
		groups: [2]string{testenv.Name(t, "normalizer"), testenv.Name(t, "dispatcher")}}
	p.common = append(common, "DANGDANG_API_URL="+p.sandboxURL+"/openapi/rest", "DANGDANG_BATCH_WINDOW=200ms")
	p.extraEnv = map[string][]string{"dispatcher": o.dispatcherEnv, "normalizer": o.normalizerEnv}
	ingressOps := freeAddr(t)
	p.sandbox = &stack.Service{Name: "ddsandbox", Bin: filepath.Join(binDir, "ddsandbox"),
		Env:      []string{"SANDBOX_ADDR=" + sandboxAddr, "SANDBOX_SHOPS=2100000000=test_secret"},
		ReadyURL: p.sandboxURL + "/sandbox/stats", Output: p.out("ddsandbox")}
	p.ingress = &stack.Service{Name: "ingress", Bin: filepath.Join(binDir, "ingress"),
		Env: append([]string{"HTTP_ADDR=" + ingressAddr, "OPS_ADDR=" + ingressOps,
			"DIANWODA_SECRETS=" + testDianwodaSecret, "ELEME_SECRETS=" + testElemeAppID + "=" + testElemeSecret}, slices.Concat(common, o.ingressEnv)...),
		ReadyURL: "http://" + ingressOps + "/readyz", Output: p.out("ingress")}
	p.normalizer = p.service("normalizer")
	p.dispatcher = p.service("dispatcher")
	all := []*stack.Service{p.sandbox, p.ingress, p.normalizer, p.dispatcher}
	for _, s := range all {
		p.start(s)
	}
	waitReady(t, all...)
	return p
}

// newTopics names the test's own topics.
func newTopics(t *testing.T) topics {
	return topics{
		Raw: testenv.Name(t, "raw"), RawDLQ: testenv.Name(t, "rawdlq"), Status: testenv.Name(t, "status"),
		Delivery: testenv.Name(t, "delivery"), Lifecycle: testenv.Name(t, "lifecycle"), Refund: testenv.Name(t, "refund"),
		Results: testenv.Name(t, "results"), StatusDLQ: testenv.Name(t, "statusdlq"),
	}
}

// waitReady waits, two minutes at most, until every one of the started services is ready.
func waitReady(t *testing.T, services ...*stack.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for _, s := range services {
		if err := s.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// out is the log file of one process; it is printed when the test fails.
func (p *pipeline) out(name string) *os.File { return processLog(p.t, p.logs, name, 64<<10) }

// processLog creates the log file of the process name in dir; when the test fails, the last
// tail bytes of it are printed (unless E2E_QUIET_LOGS is set).
func processLog(t *testing.T, dir, name string, tail int) *os.File {
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() && os.Getenv("E2E_QUIET_LOGS") == "" {
			b, _ := os.ReadFile(f.Name())
			if len(b) > tail {
				b = append([]byte("…\n"), b[len(b)-tail:]...)
			}
			t.Logf("--- %s log ---\n%s", name, b)
		}
	})
	return f
}

// service describes one normalizer or dispatcher instance (not started) with its own ops port,
// in the test's consumer group.
func (p *pipeline) service(kind string) *stack.Service {
	ops := freeAddr(p.t)
	group := p.groups[0]
	if kind == "dispatcher" {
		group = p.groups[1]
	}
	name := kind
	if p.nextName > 1 {
		name = fmt.Sprintf("%s-%d", kind, p.nextName)
	}
	p.nextName++
	return &stack.Service{Name: name, Bin: filepath.Join(binDir, kind),
		Env:      append(append([]string{"OPS_ADDR=" + ops, "KAFKA_GROUP_ID=" + group}, p.common...), p.extraEnv[kind]...),
		ReadyURL: "http://" + ops + "/readyz", Output: p.out(name)}
}

// start starts s and stops it (SIGTERM) when the test ends.
func (p *pipeline) start(s *stack.Service) {
	p.t.Helper()
	if err := s.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() {
		if err := s.Stop(20 * time.Second); err != nil {
			p.t.Errorf("stop: %v", err)
		}
	})
}

// addInstance starts another normalizer or dispatcher in the same consumer group.
func (p *pipeline) addInstance(kind string) *stack.Service {
	s := p.service(kind)
	p.start(s)
	p.extra = append(p.extra, s)
	return s
}

// consume reads topic from the beginning until match has accepted want records or the deadline
// passes, and returns the matching records.
func consume(t *testing.T, conn kafkaio.Conn, topic string, want int, match func(kafka.Message) bool) []kafka.Message {
	t.Helper()
	r := conn.NewReader(kafkaio.ReaderConfig{GroupID: testenv.Name(t, "reader"), Topic: topic})
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

// connection is how a pipeline's services (env) and the test itself (kafka) reach Kafka and
// Redis.
type connection struct {
	kafka kafkaio.Conn
	env   []string
}

// createTopics creates the test's topics through conn, retrying while the broker is busy.
func createTopics(t *testing.T, conn kafkaio.Conn, partitions int, names ...string) {
	t.Helper()
	specs := make([]kafkaio.TopicSpec, len(names))
	for i, n := range names {
		specs[i] = kafkaio.TopicSpec{Name: n, Partitions: partitions}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := retry.Do(ctx, retry.Policy{Min: 200 * time.Millisecond, Max: 2 * time.Second}, func(ctx context.Context) error {
		return conn.EnsureTopics(ctx, specs...)
	}, nil)
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
}
