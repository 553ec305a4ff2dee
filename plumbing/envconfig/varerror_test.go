package envconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestExplain(t *testing.T) {
	denied := errors.New("SASL authentication failed")
	suspect := func(err error) string {
		if errors.Is(err, denied) {
			return "KAFKA_SASL_PASSWORD"
		}
		return ""
	}
	err := Explain(denied, suspect)
	var ve *VarError
	if !errors.As(err, &ve) || ve.VariableName() != "KAFKA_SASL_PASSWORD" || !errors.Is(err, denied) {
		t.Fatalf("Explain = %v, want a VarError naming KAFKA_SASL_PASSWORD around the cause", err)
	}
	if got := err.Error(); got != "SASL authentication failed (check KAFKA_SASL_PASSWORD)" {
		t.Errorf("Error() = %q", got)
	}
	if again := Explain(err, func(error) string { return "OTHER" }); again != err {
		t.Errorf("an error that names a variable was wrapped again: %v", again)
	}
	other := errors.New("timeout")
	if got := Explain(other, suspect); got != other {
		t.Errorf("an error suspect cannot place was wrapped: %v", got)
	}
	if Explain(nil, suspect) != nil {
		t.Error("Explain(nil) != nil")
	}
}

func TestTLSFilesNameTheirVariables(t *testing.T) {
	dir := t.TempDir()
	notPEM := dir + "/ca.pem"
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		f    TLSFiles
		want string
	}{
		{TLSFiles{Prefix: "KAFKA", CAFile: dir + "/missing.pem"}, "KAFKA_TLS_CA_FILE"},
		{TLSFiles{Prefix: "REDIS", CAFile: notPEM}, "REDIS_TLS_CA_FILE"},
		{TLSFiles{Prefix: "REDIS", CertFile: notPEM, KeyFile: notPEM}, "REDIS_TLS_CERT_FILE/REDIS_TLS_KEY_FILE"},
	} {
		_, err := tt.f.Config()
		var ve *VarError
		if !errors.As(err, &ve) || ve.Variable != tt.want {
			t.Errorf("%+v: error %v, want one naming %s", tt.f, err, tt.want)
		}
	}
	cfg, err := TLSFiles{Prefix: "KAFKA", ServerName: "kafka.example"}.Config()
	if err != nil || cfg.MinVersion != tls.VersionTLS12 || cfg.ServerName != "kafka.example" || cfg.InsecureSkipVerify {
		t.Errorf("Config() = %+v, %v", cfg, err)
	}
}

func TestSuspectTLS(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{x509.HostnameError{Certificate: &x509.Certificate{}, Host: "x"}, "KAFKA_TLS_SERVER_NAME"},
		{fmt.Errorf("dial: %w", x509.UnknownAuthorityError{}), "KAFKA_TLS_CA_FILE"},
		{tls.RecordHeaderError{}, "KAFKA_TLS (the broker does not speak TLS on this port)"},
		{errors.New("remote error: tls: bad certificate"), "KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE"},
		{errors.New("connection refused"), ""},
	} {
		if got := SuspectTLS("KAFKA", "broker", tt.err); got != tt.want {
			t.Errorf("SuspectTLS(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
