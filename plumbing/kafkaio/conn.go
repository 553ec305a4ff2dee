package kafkaio

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/plumbing/envconfig"
)

// SASL mechanisms KAFKA_SASL_MECHANISM accepts.
const (
	SASLNone        = "none"
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// ConnSettings are the connection variables as read from the environment: what an operator
// wrote, before any file is opened. LoadConn turns them into a Conn.
type ConnSettings struct {
	Brokers []string
	// TLS is KAFKA_TLS: speak TLS to every broker. Never switched on or off implicitly.
	TLS bool
	// TLSCAFile is KAFKA_TLS_CA_FILE: the PEM bundle that signs the brokers' certificates; empty
	// means the system roots.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE: the client's
	// certificate and key for mutual TLS, both or neither.
	TLSCertFile, TLSKeyFile string
	// TLSServerName is KAFKA_TLS_SERVER_NAME: the name to verify instead of each broker's host.
	TLSServerName string
	// TLSInsecureSkipVerify is KAFKA_TLS_INSECURE_SKIP_VERIFY: accept any broker certificate.
	// Never the default; the connection logs a warning while it is on.
	TLSInsecureSkipVerify bool
	// SASLMechanism is KAFKA_SASL_MECHANISM: none, plain, scram-sha-256 or scram-sha-512.
	SASLMechanism string
	// SASLUsername and SASLPassword are KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (each also
	// from a file, <NAME>_FILE).
	SASLUsername string
	SASLPassword envconfig.Secret
	// ProducerLinger is KAFKA_PRODUCER_LINGER: the Linger of every Producer made through the
	// Conn (ProducerConfig.Linger), default DefaultProducerLinger; 0 sends as soon as a broker
	// has no request in flight.
	ProducerLinger time.Duration
	// producerLingerSet: KAFKA_PRODUCER_LINGER was set, so a service's own default
	// (Conn.WithDefaultProducerLinger) does not replace it.
	producerLingerSet bool
}

// DefaultProducerLinger is KAFKA_PRODUCER_LINGER's default. In the system bench at 2,000
// callbacks/s it halved the produce requests the broker handles (about 2,000 to 1,060 a
// second) for at most 2 ms more per write; under the side-by-side harness's closed loop, where
// a round trip already gathers about LingerBytes, its throughput did not move
// (docs/performance-history.md, fourth session).
const DefaultProducerLinger = 2 * time.Millisecond

// LoadConnSettings reads the Kafka connection variables through l and checks them against each
// other; every problem is recorded in l. Files are not read here (see LoadConn).
func LoadConnSettings(l *envconfig.Loader) ConnSettings {
	s := ConnSettings{
		Brokers:               l.HostPorts("KAFKA_BROKERS", "127.0.0.1:9092"),
		TLS:                   l.Bool("KAFKA_TLS", false),
		TLSCAFile:             l.String("KAFKA_TLS_CA_FILE", ""),
		TLSCertFile:           l.String("KAFKA_TLS_CERT_FILE", ""),
		TLSKeyFile:            l.String("KAFKA_TLS_KEY_FILE", ""),
		TLSServerName:         l.String("KAFKA_TLS_SERVER_NAME", ""),
		TLSInsecureSkipVerify: l.Bool("KAFKA_TLS_INSECURE_SKIP_VERIFY", false),
		SASLMechanism:         strings.ToLower(l.String("KAFKA_SASL_MECHANISM", SASLNone)),
		SASLPassword:          l.Secret("KAFKA_SASL_PASSWORD"),
	}
	s.SASLUsername, _ = l.FromFile("KAFKA_SASL_USERNAME")
	s.ProducerLinger = l.DurationIn("KAFKA_PRODUCER_LINGER", DefaultProducerLinger, 0, time.Second)
	s.producerLingerSet = l.String("KAFKA_PRODUCER_LINGER", "") != ""
	if !s.TLS {
		for name, v := range map[string]string{
			"KAFKA_TLS_CA_FILE": s.TLSCAFile, "KAFKA_TLS_CERT_FILE": s.TLSCertFile, "KAFKA_TLS_KEY_FILE": s.TLSKeyFile,
			"KAFKA_TLS_SERVER_NAME": s.TLSServerName,
		} {
			if v != "" {
				l.Fail(name, "is set but KAFKA_TLS is not true; set KAFKA_TLS=true to use TLS")
			}
		}
		if s.TLSInsecureSkipVerify {
			l.Fail("KAFKA_TLS_INSECURE_SKIP_VERIFY", "is true but KAFKA_TLS is not true")
		}
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		l.Conflict("set both (mutual TLS) or neither", "KAFKA_TLS_CERT_FILE", "KAFKA_TLS_KEY_FILE")
	}
	switch s.SASLMechanism {
	case SASLNone:
		if s.SASLUsername != "" || s.SASLPassword != "" {
			l.Fail("KAFKA_SASL_MECHANISM", "is none but KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set; choose plain, scram-sha-256 or scram-sha-512")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.SASLUsername == "" {
			l.Fail("KAFKA_SASL_USERNAME", "is required with KAFKA_SASL_MECHANISM=%s", s.SASLMechanism)
		}
		if s.SASLPassword == "" {
			l.Fail("KAFKA_SASL_PASSWORD", "is required with KAFKA_SASL_MECHANISM=%s", s.SASLMechanism)
		}
	default:
		l.Fail("KAFKA_SASL_MECHANISM", "%q is not one of none, plain, scram-sha-256, scram-sha-512", s.SASLMechanism)
	}
	return s
}

// LoadConn reads the Kafka connection variables through l, opens the certificate files they
// name, and returns the Conn every component dials Kafka with. Problems are recorded in l, each
// naming its variable; the Conn is usable only when l.Err() is nil.
func LoadConn(l *envconfig.Loader) Conn {
	s := LoadConnSettings(l)
	c, err := s.Conn()
	if err != nil {
		var ce *envconfig.VarError
		if errors.As(err, &ce) {
			l.Fail(ce.Variable, "%v", ce.Err)
		} else {
			l.Fail("KAFKA_TLS", "%v", err)
		}
	}
	return c
}

// Conn builds the connection: it reads the CA bundle and the client certificate and prepares
// the SASL mechanism. An error names the variable at fault (a *envconfig.VarError).
func (s ConnSettings) Conn() (Conn, error) {
	c := Conn{Brokers: s.Brokers, settings: s}
	if s.TLS {
		cfg, err := envconfig.TLSFiles{Prefix: "KAFKA", CAFile: s.TLSCAFile, CertFile: s.TLSCertFile, KeyFile: s.TLSKeyFile,
			ServerName: s.TLSServerName, InsecureSkipVerify: s.TLSInsecureSkipVerify}.Config()
		if err != nil {
			return c, err
		}
		c.TLS = cfg
	}
	switch s.SASLMechanism {
	case SASLPlain:
		c.SASL = plain.Mechanism{Username: s.SASLUsername, Password: s.SASLPassword.Reveal()}
	case SASLScramSHA256, SASLScramSHA512:
		algo := scram.SHA256
		if s.SASLMechanism == SASLScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, s.SASLUsername, s.SASLPassword.Reveal())
		if err != nil {
			// The error of xdg-go/scram's SASLprep says which rune is wrong, never the password.
			return c, &envconfig.VarError{Variable: "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD", Err: errors.New("prepare SCRAM credentials: not valid SASLprep text")}
		}
		c.SASL = m
	}
	return c, nil
}

// Conn is how to reach the Kafka cluster: the brokers and, when configured, TLS and a SASL
// mechanism. It is the one way this project dials Kafka: readers, writers, admin clients, the
// readiness ping, topic creation and the lag reader are all built from a Conn, so no component
// can forget the security settings (a test scans the code for any other way). A Conn with nil
// TLS and SASL is plaintext and unauthenticated only because the operator configured it so.
type Conn struct {
	Brokers []string
	// TLS is nil for a plaintext connection.
	TLS *tls.Config
	// SASL is nil for no authentication.
	SASL sasl.Mechanism

	settings ConnSettings
}

// Plaintext is a Conn to brokers without TLS or SASL: the local test broker and tools.
func Plaintext(brokers ...string) Conn {
	return Conn{Brokers: brokers, settings: ConnSettings{Brokers: brokers, SASLMechanism: SASLNone}}
}

// WithDefaultProducerLinger is the Conn with d as its Producers' linger instead of
// DefaultProducerLinger, unless KAFKA_PRODUCER_LINGER was set: an operator's value means the same
// in every service. For a service whose writes nothing waits on (the dispatcher).
func (c Conn) WithDefaultProducerLinger(d time.Duration) Conn {
	if !c.settings.producerLingerSet {
		c.settings.ProducerLinger = d
	}
	return c
}

// ProducerLinger is the Linger of the Producers made through the Conn.
func (c Conn) ProducerLinger() time.Duration { return c.settings.ProducerLinger }

// Log writes the connection's settings at start (never the password) and warns when TLS
// verification is off or a plain password travels without TLS.
func (c Conn) Log(log *zap.Logger) {
	s := c.settings
	log.Info("kafka connection", zap.Strings("brokers", c.Brokers), zap.Bool("tls", c.TLS != nil),
		zap.Bool("mutual_tls", c.TLS != nil && len(c.TLS.Certificates) > 0), zap.String("sasl_mechanism", s.SASLMechanism),
		zap.String("sasl_username", s.SASLUsername))
	if c.TLS != nil && c.TLS.InsecureSkipVerify {
		log.Warn("KAFKA_TLS_INSECURE_SKIP_VERIFY is true: broker certificates are not verified; anyone on the path can read and change the traffic")
	}
	if c.TLS == nil && s.SASLMechanism == SASLPlain {
		log.Warn("KAFKA_SASL_MECHANISM=plain without KAFKA_TLS sends the password in clear text")
	}
}

// NewTransportFor is NewTransport whose metadata refresh asks for topics only (none: the
// brokers only). kafka-go's Transport otherwise asks for every topic of the cluster at a random
// time within each MetadataTTL, about twice a second per Transport here: on a cluster of many
// topics each such request costs the broker milliseconds of a request thread (9.6 ms each with
// 153 topics, docs/performance-history.md), and every reader, producer and client has a Transport.
// A Transport made for topics knows nothing of any other: requests for another topic fail as
// if it did not exist.
func (c Conn) NewTransportFor(topics ...string) *kafka.Transport {
	tr := c.NewTransport()
	tr.MetadataTopics = append([]string{}, topics...) // never nil: nil asks for every topic
	return tr
}

// NewTransport returns a Transport of its own (TLS and SASL included) with a short metadata TTL,
// so that a component does not share kafka-go's DefaultTransport and its stale metadata cache.
// Its metadata refresh asks for every topic of the cluster: prefer NewTransportFor.
func (c Conn) NewTransport() *kafka.Transport {
	return &kafka.Transport{
		Dial:        (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		DialTimeout: 5 * time.Second,
		IdleTimeout: 30 * time.Second,
		MetadataTTL: time.Second,
		ClientID:    "orderpipe",
		TLS:         c.TLS,
		SASL:        c.SASL,
	}
}

// NewDialer returns the Dialer readers use: TLS and SASL included.
func (c Conn) NewDialer() *kafka.Dialer {
	return &kafka.Dialer{
		Timeout:       5 * time.Second,
		DualStack:     true,
		ClientID:      "orderpipe",
		TLS:           c.TLS,
		SASLMechanism: c.SASL,
	}
}

// Client is an admin and metadata client with a transport of its own; Close releases its
// connections.
type Client struct {
	*kafka.Client
	transport *kafka.Transport
	conn      Conn
}

// Close closes the client's idle connections.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// Transport is the client's own transport, e.g. to narrow MetadataTopics.
func (c *Client) Transport() *kafka.Transport { return c.transport }

// NewClient returns an admin/metadata client whose requests time out after timeout. Its
// metadata is the whole cluster's (admin work: creating, listing, describing topics); a client
// that only ever looks at some topics is NewClientFor.
func (c Conn) NewClient(timeout time.Duration) *Client {
	return c.newClient(timeout, c.NewTransport())
}

// NewClientFor is NewClient for a client that only looks at topics (NewTransportFor): its
// metadata requests ask for them alone.
func (c Conn) NewClientFor(timeout time.Duration, topics ...string) *Client {
	return c.newClient(timeout, c.NewTransportFor(topics...))
}

func (c Conn) newClient(timeout time.Duration, tr *kafka.Transport) *Client {
	return &Client{Client: &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: timeout, Transport: tr}, transport: tr, conn: c}
}

// Ping asks a broker for its API versions, then for the cluster's metadata (or, with topics,
// theirs, failing when one is missing), over the client's pooled connections: a readiness loop
// that probes every few seconds keeps one TLS session and one SASL login. The error names the
// variable to check (Explain).
//
// The API versions request is what makes nil mean a broker answered: kafka-go's Transport
// answers a metadata request from its cached view of the cluster, and keeps that view when its
// refreshes fail, so a long-lived client's metadata alone kept succeeding with every broker down
// (the ingress stayed ready through a whole outage; TestPingNoticesTheBrokerDown).
func (c *Client) Ping(ctx context.Context, topics ...string) error {
	if topics == nil {
		topics = []string{}
	}
	if _, err := c.ApiVersions(ctx, &kafka.ApiVersionsRequest{}); err != nil {
		return c.conn.Explain(fmt.Errorf("kafka api versions: %w", err))
	}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return c.conn.Explain(fmt.Errorf("kafka metadata: %w", err))
	}
	for _, want := range topics {
		found := false
		for _, t := range md.Topics {
			if t.Name == want {
				if t.Error != nil {
					return fmt.Errorf("topic %s: %w", want, t.Error)
				}
				found = true
			}
		}
		if !found {
			return fmt.Errorf("topic %s: not in metadata", want)
		}
	}
	return nil
}

// Explain is the Conn's Explain.
func (c *Client) Explain(err error) error { return c.conn.Explain(err) }

// Ping asks the cluster for its metadata: nil means a broker answered within ctx, over TLS and
// SASL when configured. A ctx with a deadline is the only bound (a first TLS handshake and SASL
// login on a loaded machine may take seconds); without one, each request gets 3 s. A caller that
// polls gives each attempt its own deadline. Its connections are closed before it returns, so a
// readiness loop that pings every few seconds leaks nothing. The error names the variable to
// check (Explain).
func (c Conn) Ping(ctx context.Context) error {
	timeout := 3 * time.Second
	if _, ok := ctx.Deadline(); ok {
		timeout = 0
	}
	client := c.NewClientFor(timeout) // the brokers, no topic's metadata
	defer client.Close()
	return client.Ping(ctx)
}

// Explain wraps err in an *envconfig.VarError naming the variable most likely at fault: a
// refused authentication names KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD, an unknown certificate
// authority KAFKA_TLS_CA_FILE, a rejected client certificate KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE,
// and so on. Errors it cannot place, and nil, are returned as they are.
func (c Conn) Explain(err error) error { return envconfig.Explain(err, c.suspect) }

func (c Conn) suspect(err error) string {
	var dns *net.DNSError
	msg := err.Error()
	if v := envconfig.SuspectTLS("KAFKA", "broker", err); v != "" {
		return v
	}
	switch {
	case errors.Is(err, kafka.SASLAuthenticationFailed) || strings.Contains(msg, "SASL Authentication Failed"):
		return "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD"
	case errors.Is(err, kafka.UnsupportedSASLMechanism) || errors.Is(err, kafka.IllegalSASLState):
		return "KAFKA_SASL_MECHANISM"
	case errors.As(err, &dns), errors.Is(err, syscall.ECONNREFUSED):
		return "KAFKA_BROKERS"
	case c.TLS == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		return "KAFKA_TLS/KAFKA_SASL_MECHANISM (the broker closed the connection: it may expect TLS or SASL)"
	case c.SASL == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		return "KAFKA_SASL_MECHANISM (the broker closed the connection: it may expect SASL)"
	}
	return ""
}
