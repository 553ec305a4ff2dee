package testenv_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// These tests prove the local secured infrastructure that deploy/local/testenv.sh starts with
// real clients; they test the environment, not the product's constructors.

func tlsConfig(t *testing.T, caFile, certFile, keyFile string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("read CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", caFile)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatalf("load client certificate: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

func metadata(tlsCfg *tls.Config, mech sasl.Mechanism, brokers []string) (*kafka.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tr := &kafka.Transport{TLS: tlsCfg, SASL: mech, DialTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: 10 * time.Second}
	return c.Metadata(ctx, &kafka.MetadataRequest{})
}

func scramMech(t *testing.T, algo scram.Algorithm, user, pass string) sasl.Mechanism {
	t.Helper()
	m, err := scram.Mechanism(algo, user, pass)
	if err != nil {
		t.Fatalf("scram mechanism: %v", err)
	}
	return m
}

func TestSecureKafkaSASLSSL(t *testing.T) {
	e := testenv.SecureKafka(t)
	ok := tlsConfig(t, e.CAFile, "", "")
	for name, mech := range map[string]sasl.Mechanism{
		"scram-sha-512": scramMech(t, scram.SHA512, e.Username, e.Password),
		"scram-sha-256": scramMech(t, scram.SHA256, e.Username, e.Password),
		"plain":         plain.Mechanism{Username: e.Username, Password: e.Password},
	} {
		t.Run(name, func(t *testing.T) {
			md, err := metadata(ok, mech, e.SASLSSLBrokers)
			if err != nil {
				t.Fatalf("metadata over SASL_SSL with %s: %v", name, err)
			}
			if len(md.Brokers) == 0 {
				t.Fatal("metadata lists no broker")
			}
			for _, b := range md.Brokers { // advertised on the listener the client came in on
				if !contains(e.SASLSSLBrokers, net.JoinHostPort(b.Host, strconv.Itoa(b.Port))) {
					t.Errorf("broker %s:%d is not one of the SASL_SSL brokers %v", b.Host, b.Port, e.SASLSSLBrokers)
				}
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		_, err := metadata(ok, scramMech(t, scram.SHA512, e.Username, e.Password+"x"), e.SASLSSLBrokers)
		if !errors.Is(err, kafka.SASLAuthenticationFailed) {
			t.Fatalf("metadata with a wrong password: got %v, want SASLAuthenticationFailed", err)
		}
	})
	t.Run("wrong CA", func(t *testing.T) {
		_, err := metadata(tlsConfig(t, e.WrongCAFile, "", ""), scramMech(t, scram.SHA512, e.Username, e.Password), e.SASLSSLBrokers)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("metadata verifying the broker with an unrelated CA: got %v, want an unknown-authority error", err)
		}
	})
	t.Run("write over SASL_SSL", func(t *testing.T) {
		topic := testenv.Name(t, "secure")
		testenv.Topics(t, testenv.Kafka(t), 1, topic)
		w := &kafka.Writer{Addr: kafka.TCP(e.SASLSSLBrokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
			Transport: &kafka.Transport{TLS: ok, SASL: scramMech(t, scram.SHA512, e.Username, e.Password)}}
		defer w.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
			t.Fatalf("write over SASL_SSL: %v", err)
		}
	})
}

func TestSecureKafkaMutualTLS(t *testing.T) {
	e := testenv.SecureKafka(t)
	md, err := metadata(tlsConfig(t, e.CAFile, e.CertFile, e.KeyFile), nil, e.MTLSBrokers)
	if err != nil {
		t.Fatalf("metadata over mutual TLS: %v", err)
	}
	if len(md.Brokers) == 0 {
		t.Fatal("metadata lists no broker")
	}
	if _, err := metadata(tlsConfig(t, e.CAFile, "", ""), nil, e.MTLSBrokers); err == nil {
		t.Fatal("metadata over the mTLS listener without a client certificate succeeded")
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
