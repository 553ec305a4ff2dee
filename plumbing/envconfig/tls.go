package envconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// TLSFiles are the TLS settings of one client, read from <PREFIX>_TLS_* variables (KAFKA_TLS_*,
// REDIS_TLS_*): the same names and the same meaning for Kafka and Redis.
type TLSFiles struct {
	// Prefix names the variables in errors: "KAFKA" → KAFKA_TLS_CA_FILE, ….
	Prefix             string
	CAFile             string // empty: the system roots
	CertFile, KeyFile  string // both or neither: the client certificate (mutual TLS)
	ServerName         string
	InsecureSkipVerify bool
}

// Config builds the tls.Config: TLS 1.2 at least, the CA bundle and the client certificate
// read now. An error is a *VarError naming the variable at fault.
func (f TLSFiles) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName, InsecureSkipVerify: f.InsecureSkipVerify} //nolint:gosec // only on the operator's explicit request, with a warning
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, &VarError{Variable: f.Prefix + "_TLS_CA_FILE", Err: fmt.Errorf("read %s: %w", f.CAFile, errors.Unwrap(err))}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &VarError{Variable: f.Prefix + "_TLS_CA_FILE", Err: fmt.Errorf("%s holds no PEM certificate", f.CAFile)}
		}
		cfg.RootCAs = pool
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, &VarError{Variable: f.Prefix + "_TLS_CERT_FILE/" + f.Prefix + "_TLS_KEY_FILE", Err: fmt.Errorf("load client certificate: %w", err)}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// SuspectTLS names the <prefix>_TLS_* variable a TLS handshake error points at, or "": a name
// mismatch → _TLS_SERVER_NAME, an unknown or invalid server certificate → _TLS_CA_FILE, a
// server that does not speak TLS → _TLS, a refused client certificate → _TLS_CERT_FILE/_KEY_FILE.
// peer names the server in the message ("broker", "server").
func SuspectTLS(prefix, peer string, err error) string {
	var (
		unknownCA x509.UnknownAuthorityError // a value: crypto/x509 returns it so
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
		alert     tls.AlertError
	)
	switch {
	case errors.As(err, &hostname):
		return prefix + "_TLS_SERVER_NAME"
	case errors.As(err, &unknownCA), errors.As(err, &invalid), errors.As(err, &verify):
		return prefix + "_TLS_CA_FILE"
	case errors.As(err, &record):
		return prefix + "_TLS (the " + peer + " does not speak TLS on this port)"
	case errors.As(err, &alert), strings.Contains(err.Error(), "remote error: tls:"):
		// bad_certificate, unknown_ca, certificate_required: the peer refused our certificate.
		return prefix + "_TLS_CERT_FILE/" + prefix + "_TLS_KEY_FILE"
	}
	return ""
}
