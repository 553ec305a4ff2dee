// Package servicetest holds the readiness contract every service keeps on secured
// infrastructure, as a table its tests run against the real secured Kafka and Redis of
// `make test`: with the right settings the service becomes ready; with one wrong setting (a
// Kafka password, a CA, a Redis password, an unreachable Sentinel group) it stays not ready,
// logs an error naming the variable to check, never logs the secret, and writes nothing.
package servicetest

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/redisio"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// Case is one row of the contract.
type Case struct {
	Name string
	// Env is the service's connection environment for this case.
	Env map[string]string
	// Ready: the right settings; the service must become ready.
	Ready bool
	// Variable must appear in an error-level log line when not Ready.
	Variable string
	// Secret is the wrong secret of the case, which must appear in no log line.
	Secret string
}

// Infra is the secured test infrastructure, with a working connection to each part for the
// test's own set-up and checks.
type Infra struct {
	Kafka kafkaio.Conn
	Redis redisio.Config
	// Env connects a service to SASL_SSL Kafka (SCRAM-SHA-512) and TLS + ACL Redis.
	Env map[string]string
	// Passwords are the right ones: never to appear in a log either.
	Passwords []string
	// WrongCA is a CA that did not sign the servers' certificates.
	WrongCA string
}

// Secured returns the secured infrastructure, or skips/fails the test like testenv does.
func Secured(t *testing.T) Infra {
	t.Helper()
	k, r := testenv.SecureKafka(t), testenv.RedisTLS(t)
	env := map[string]string{
		"KAFKA_BROKERS": strings.Join(k.SASLSSLBrokers, ","), "KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": k.CAFile,
		"KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_SASL_USERNAME": k.Username, "KAFKA_SASL_PASSWORD": k.Password,
		"REDIS_ADDR": r.Addr, "REDIS_TLS": "true", "REDIS_TLS_CA_FILE": r.CAFile, "REDIS_USERNAME": r.Username, "REDIS_PASSWORD": r.Password,
	}
	l := envconfig.New(func(k string) string { return env[k] })
	in := Infra{Kafka: kafkaio.LoadConn(l), Redis: redisio.Load(l, ""), Env: env, Passwords: []string{k.Password, r.Password}, WrongCA: k.WrongCAFile}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return in
}

// With returns a copy of env with over applied; an empty value removes the variable.
func With(env, over map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for k, v := range over {
		if v == "" {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// Cases are the rows every service runs; withRedis adds the Redis rows.
func (in Infra) Cases(withRedis bool) []Case {
	const wrongKafka, wrongRedis = "wrong-kafka-Pa55word", "wrong-redis-Pa55word"
	cases := []Case{
		{Name: "right settings", Env: in.Env, Ready: true},
		{Name: "wrong Kafka password", Env: With(in.Env, map[string]string{"KAFKA_SASL_PASSWORD": wrongKafka}), Variable: "KAFKA_SASL_PASSWORD", Secret: wrongKafka},
		{Name: "wrong Kafka CA", Env: With(in.Env, map[string]string{"KAFKA_TLS_CA_FILE": in.WrongCA}), Variable: "KAFKA_TLS_CA_FILE"},
	}
	if withRedis {
		cases = append(cases,
			Case{Name: "wrong Redis password", Env: With(in.Env, map[string]string{"REDIS_PASSWORD": wrongRedis}), Variable: "REDIS_USERNAME/REDIS_PASSWORD", Secret: wrongRedis},
			Case{Name: "unreachable Sentinel", Env: With(in.Env, map[string]string{
				"REDIS_ADDR": "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", "REDIS_MASTER_NAME": "orderpipe",
				"REDIS_TLS": "", "REDIS_TLS_CA_FILE": "", "REDIS_USERNAME": "", "REDIS_PASSWORD": "",
			}), Variable: "REDIS_ADDR (sentinels)"},
		)
	}
	return cases
}

// Start runs the service with env, its logs going to logs, and returns its ops base URL
// ("http://host:port") and a function that stops it.
type Start func(t *testing.T, env map[string]string, logs io.Writer) (opsURL string, stop func())

// Run runs one case: it starts the service, waits for it to become ready (Ready) or to log the
// variable at error level while not ready, checks that no line holds a secret, then lets the
// service run on for settle and asks written how many records or keys it wrote (must be 0 when
// not Ready; done, when Ready, must return nil once the service did its work).
func (in Infra) Run(t *testing.T, tc Case, start Start, settle time.Duration, written func(t *testing.T) int, done func(t *testing.T) error) {
	t.Helper()
	logs := &testenv.Buffer{}
	opsURL, stop := start(t, tc.Env, logs)
	defer func() {
		stop()
		for _, s := range append([]string{tc.Secret}, in.Passwords...) {
			if s != "" && strings.Contains(logs.String(), s) {
				t.Errorf("a password is in the logs")
			}
		}
		if t.Failed() {
			t.Logf("logs:\n%s", tail(logs.String(), 8<<10))
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := get(opsURL + "/readyz")
		switch {
		case tc.Ready && code == http.StatusOK:
			for err := done(t); err != nil; err = done(t) {
				if time.Now().After(deadline) {
					t.Fatalf("ready, but the work was not done: %v", err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			return
		case tc.Ready && time.Now().After(deadline):
			t.Fatalf("not ready after 60s: %d %s", code, body)
		case !tc.Ready && code == http.StatusOK:
			t.Fatalf("ready with %s: %s", tc.Name, body)
		case !tc.Ready && code == http.StatusServiceUnavailable && errorLogNames(logs.String(), tc.Variable):
			time.Sleep(settle)
			if code, body := get(opsURL + "/readyz"); code != http.StatusServiceUnavailable {
				t.Fatalf("readyz %d %s after %s, want 503", code, body, settle)
			}
			if n := written(t); n != 0 {
				t.Fatalf("wrote %d records or keys while not ready", n)
			}
			t.Logf("readyz: %s", strings.TrimSpace(body))
			return
		case !tc.Ready && time.Now().After(deadline):
			t.Fatalf("no error log naming %s within 60s (readyz %d %s)", tc.Variable, code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// errorLogNames reports whether an error-level JSON log line names variable.
func errorLogNames(logs, variable string) bool {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"level":"error"`) && strings.Contains(line, variable) {
			return true
		}
	}
	return false
}

func get(url string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Records returns how many records topic holds (end minus start offsets), through conn.
func Records(t *testing.T, conn kafkaio.Conn, topic string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lag, err := conn.GroupLag(ctx, "servicetest-no-such-group", topic)
	if err != nil {
		t.Fatalf("count records of %s: %v", topic, err)
	}
	n := 0
	for _, l := range lag {
		n += int(l)
	}
	return n
}

// RunFunc is a service's run(ctx, getenv, stdout), the whole of what its main does.
type RunFunc func(ctx context.Context, getenv func(string) string, stdout io.Writer) error

// InProcess is the Start of a service that runs as its main would, in the test's process, on an
// ops port of its own; stopping it cancels run and waits (30 s at most) for it to return nil.
func InProcess(run RunFunc) Start {
	return func(t *testing.T, env map[string]string, logs io.Writer) (string, func()) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ops := ln.Addr().String()
		ln.Close()
		env = With(env, map[string]string{"OPS_ADDR": ops})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- run(ctx, func(k string) string { return env[k] }, logs) }()
		return "http://" + ops, func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("run did not stop")
			}
		}
	}
}

// Seed creates the topics (one partition each) and writes msg to topic, retrying (a fresh
// SASL_SSL user or topic may take a moment to be usable) until ctx ends.
func Seed(ctx context.Context, t *testing.T, conn kafkaio.Conn, topics []string, topic string, msg kafka.Message) {
	t.Helper()
	specs := make([]kafkaio.TopicSpec, 0, len(topics))
	for _, n := range topics {
		specs = append(specs, kafkaio.TopicSpec{Name: n, Partitions: 1})
	}
	if err := conn.EnsureTopics(ctx, specs...); err != nil {
		t.Fatal(err)
	}
	w := conn.NewWriter(kafkaio.WriterConfig{Topic: topic})
	defer w.Close()
	write := func(ctx context.Context) error { return w.WriteMessages(ctx, msg) }
	if err := retry.Do(ctx, retry.Policy{Min: 100 * time.Millisecond, Max: time.Second}, write, nil); err != nil {
		t.Fatalf("seed %s: %v", topic, err)
	}
}

// Each runs f on every case of the contract (with the Redis cases when withRedis), each as a
// subtest, against the secured infrastructure.
func Each(t *testing.T, withRedis bool, f func(t *testing.T, in Infra, tc Case)) {
	t.Helper()
	in := Secured(t)
	for _, tc := range in.Cases(withRedis) {
		t.Run(tc.Name, func(t *testing.T) { f(t, in, tc) })
	}
}

// RedisKeys counts the keys under prefix in the secured Redis.
func (in Infra) RedisKeys(t *testing.T, prefix string) int {
	t.Helper()
	rdb, err := in.Redis.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	keys, err := rdb.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}
