package kafkaio_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

func secureConn(t *testing.T, env map[string]string) kafkaio.Conn {
	t.Helper()
	l := envconfig.New(envOf(env))
	c := kafkaio.LoadConn(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSecuredRoundTrip: through each secured listener and mechanism, a Conn creates a topic
// (replicated as the cluster allows: one broker, RF 1, min ISR 1), writes, reads in a group,
// commits, and reads the group's lag — every kind of client the services build.
func TestSecuredRoundTrip(t *testing.T) {
	s := testenv.SecureKafka(t)
	sasl := func(mech string) map[string]string {
		return map[string]string{"KAFKA_BROKERS": strings.Join(s.SASLSSLBrokers, ","), "KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": s.CAFile,
			"KAFKA_SASL_MECHANISM": mech, "KAFKA_SASL_USERNAME": s.Username, "KAFKA_SASL_PASSWORD": s.Password}
	}
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"SASL_SSL scram-sha-512", sasl("scram-sha-512")},
		{"SASL_SSL scram-sha-256", sasl("scram-sha-256")},
		{"SASL_SSL plain", sasl("plain")},
		{"mutual TLS", map[string]string{"KAFKA_BROKERS": strings.Join(s.MTLSBrokers, ","), "KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": s.CAFile,
			"KAFKA_TLS_CERT_FILE": s.CertFile, "KAFKA_TLS_KEY_FILE": s.KeyFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := secureConn(t, tt.env)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := c.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			topic := testenv.Name(t, "secure")
			rf, minISR, err := c.EnsureReplicatedTopics(ctx, kafkaio.Replication{Factor: 3, MinInsync: 2}, kafkaio.TopicSpec{Name: topic, Partitions: 2})
			if err != nil {
				t.Fatal(err)
			}
			brokers, reps, err := c.DescribeReplication(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			if rf != 1 || minISR != 1 || brokers != 1 || len(reps) != 1 || reps[0].Factor != 1 || reps[0].MinInsync != 1 {
				t.Errorf("one broker: created rf %d min ISR %d; described %d brokers %+v; want all 1", rf, minISR, brokers, reps)
			}
			w := c.NewWriter(kafkaio.WriterConfig{Topic: topic})
			defer w.Close()
			for i := 0; ; i++ { // metadata of the new topic may lag a moment
				if err = w.WriteMessages(ctx, kafka.Message{Key: []byte("dianwoda:1"), Value: []byte("v")}); err == nil || i == 50 {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				t.Fatal(err)
			}
			group := testenv.Name(t, "g")
			r := c.NewReader(kafkaio.ReaderConfig{GroupID: group, Topic: topic})
			defer r.Close()
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Value) != "v" {
				t.Fatalf("read %q", m.Value)
			}
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatal(err)
			}
			lag, err := c.GroupLag(ctx, group, topic)
			if err != nil {
				t.Fatal(err)
			}
			for p, n := range lag {
				if n != 0 {
					t.Errorf("lag of partition %d = %d after commit", p, n)
				}
			}
			pr := c.NewReader(kafkaio.ReaderConfig{Topic: topic, Partition: m.Partition})
			defer pr.Close()
			if pm, err := pr.ReadMessage(ctx); err != nil || string(pm.Value) != "v" {
				t.Fatalf("partition reader: %q, %v", pm.Value, err)
			}
		})
	}
}

// TestSecuredFailuresNameTheVariable: a wrong password, a wrong CA, a missing client certificate
// and a plaintext client on a TLS port each fail with the variable to check, and neither the
// error nor the logs hold the password.
func TestSecuredFailuresNameTheVariable(t *testing.T) {
	s := testenv.SecureKafka(t)
	const wrongPassword = "wrong-Pa55word-in-test"
	base := func(m map[string]string) map[string]string {
		env := map[string]string{"KAFKA_BROKERS": strings.Join(s.SASLSSLBrokers, ","), "KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": s.CAFile,
			"KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_SASL_USERNAME": s.Username, "KAFKA_SASL_PASSWORD": s.Password}
		for k, v := range m {
			env[k] = v
			if v == "" {
				delete(env, k)
			}
		}
		return env
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"wrong password", base(map[string]string{"KAFKA_SASL_PASSWORD": wrongPassword}), "KAFKA_SASL_PASSWORD"},
		{"wrong password, plain", base(map[string]string{"KAFKA_SASL_MECHANISM": "plain", "KAFKA_SASL_PASSWORD": wrongPassword}), "KAFKA_SASL_PASSWORD"},
		{"wrong CA", base(map[string]string{"KAFKA_TLS_CA_FILE": s.WrongCAFile, "KAFKA_SASL_PASSWORD": wrongPassword}), "KAFKA_TLS_CA_FILE"},
		{"wrong server name", base(map[string]string{"KAFKA_TLS_SERVER_NAME": "kafka.example.com"}), "KAFKA_TLS_SERVER_NAME"},
		{"no TLS on a TLS port", base(map[string]string{"KAFKA_TLS": "", "KAFKA_TLS_CA_FILE": ""}), "KAFKA_TLS"},
		{"no client certificate", map[string]string{"KAFKA_BROKERS": strings.Join(s.MTLSBrokers, ","), "KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": s.CAFile},
			"KAFKA_TLS_CERT_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := secureConn(t, tt.env)
			core, logs := observer.New(zap.DebugLevel)
			log := zap.New(core)
			c.Log(log)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := c.Ping(ctx)
			if err == nil {
				t.Fatal("ping succeeded")
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not name %s: %v", tt.want, err)
			}
			_, _, cerr := c.EnsureReplicatedTopics(ctx, kafkaio.Replication{Factor: 3, MinInsync: 2}, kafkaio.TopicSpec{Name: testenv.Name(t, "never")})
			if cerr == nil {
				t.Error("topic created without a valid connection")
			}
			log.Error("kafka unreachable", zap.Error(err), zap.Error(cerr))
			texts := []string{err.Error(), cerr.Error()}
			for _, e := range logs.All() {
				texts = append(texts, e.Message)
				for k, v := range e.ContextMap() {
					texts = append(texts, k+"="+strings.TrimSpace(fmtAny(v)))
				}
			}
			for _, txt := range texts {
				if strings.Contains(txt, wrongPassword) || strings.Contains(txt, s.Password) {
					t.Errorf("password in %q", txt)
				}
			}
		})
	}
}

func fmtAny(v any) string { return fmt.Sprint(v) }
