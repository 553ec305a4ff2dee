package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/service/servicetest"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// TestSecuredReadiness runs the ingress against SASL_SSL Kafka (SCRAM-SHA-512): with the right
// settings it becomes ready and stores a signed callback before answering 200; with a wrong
// Kafka password or a wrong CA it stays not ready, logs the variable to check, answers the
// platform 503 and writes nothing.
func TestSecuredReadiness(t *testing.T) {
	in := servicetest.Secured(t)
	for _, tc := range in.Cases(false) {
		t.Run(tc.Name, func(t *testing.T) {
			topic := testenv.Name(t, "raw")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := in.Kafka.EnsureTopics(ctx, kafkaio.TopicSpec{Name: topic, Partitions: 1}); err != nil {
				t.Fatal(err)
			}
			tc.Env = servicetest.With(tc.Env, map[string]string{"TOPIC_RAW": topic, "LOG_LEVEL": "info"})
			var p *proc
			start := func(t *testing.T, env map[string]string, logs io.Writer) (string, func()) {
				p = startSecured(t, env, logs)
				return p.opsURL, func() { p.stop(t) }
			}
			written := func(t *testing.T) int {
				if code := p.postDianwoda("S1"); code != http.StatusServiceUnavailable {
					t.Errorf("callback answered %d while Kafka refuses the ingress, want 503", code)
				}
				return servicetest.Records(t, in.Kafka, topic)
			}
			done := func(t *testing.T) error {
				if code := p.postDianwoda("S1"); code != http.StatusOK {
					return fmt.Errorf("callback answered %d", code)
				}
				if n := servicetest.Records(t, in.Kafka, topic); n < 1 {
					return fmt.Errorf("%d records after a 200", n)
				}
				return nil
			}
			in.Run(t, tc, start, 2*time.Second, written, done)
		})
	}
}

// startSecured runs the ingress in-process with exactly env (plus its test secrets and ports).
func startSecured(t *testing.T, env map[string]string, logs io.Writer) *proc {
	t.Helper()
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ol, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env = servicetest.With(env, map[string]string{"DIANWODA_SECRETS": dwdSecret, "INGRESS_DRAIN_DELAY": "0s",
		"HTTP_ADDR": hl.Addr().String(), "OPS_ADDR": ol.Addr().String()})
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{httpURL: "http://" + hl.Addr().String(), opsURL: "http://" + ol.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() {
		p.done <- runWith(ctx, func(k string) string { return env[k] }, logs, listeners{http: hl, ops: ol})
	}()
	return p
}
