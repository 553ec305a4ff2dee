// Package config loads the ingress configuration from the environment, with every problem listed
// at once. Secrets are never echoed in an error message.
package config

import (
	"strings"
	"time"

	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/schemas"
)

// Config is the ingress configuration. README.md "Configuration" documents every field.
type Config struct {
	Brokers  []string
	HTTPAddr string
	OpsAddr  string
	LogLevel string

	// DianwodaSecrets: any one may sign (rotation). Empty: the Dianwoda route answers 503.
	DianwodaSecrets []string
	// ElemeSecrets: appId → its secrets. Empty: the Eleme route answers 503.
	ElemeSecrets map[string][]string

	TopicRaw        string
	TopicAutoCreate bool
	TopicPartitions int

	MaxBody           int64
	MaxInflight       int
	WriteTimeout      time.Duration
	PingInterval      time.Duration
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	HTTPWriteTimeout  time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
	DrainDelay        time.Duration
}

// Load reads the configuration through getenv.
func Load(getenv func(string) string) (Config, error) {
	l := envconfig.New(getenv)
	c := Config{
		Brokers:           l.HostPorts("KAFKA_BROKERS", "127.0.0.1:9092"),
		HTTPAddr:          l.Addr("HTTP_ADDR", ":8080"),
		OpsAddr:           l.Addr("OPS_ADDR", ":8081"),
		LogLevel:          l.Level("LOG_LEVEL", "info"),
		DianwodaSecrets:   l.List("DIANWODA_SECRETS", ""),
		TopicRaw:          l.String("TOPIC_RAW", schemas.TopicRaw),
		TopicAutoCreate:   l.Bool("TOPIC_AUTO_CREATE", true),
		TopicPartitions:   l.Int("TOPIC_PARTITIONS", 12, 1, 10000),
		MaxBody:           l.Bytes("INGRESS_MAX_BODY", 1<<20),
		MaxInflight:       l.Int("INGRESS_MAX_INFLIGHT", 256, 1, 1<<20),
		WriteTimeout:      l.Duration("INGRESS_WRITE_TIMEOUT", 5*time.Second),
		PingInterval:      l.Duration("INGRESS_KAFKA_PING_INTERVAL", time.Second),
		ReadHeaderTimeout: l.Duration("INGRESS_READ_HEADER_TIMEOUT", 5*time.Second),
		ReadTimeout:       l.Duration("INGRESS_READ_TIMEOUT", 10*time.Second),
		HTTPWriteTimeout:  l.Duration("INGRESS_HTTP_WRITE_TIMEOUT", 15*time.Second),
		IdleTimeout:       l.Duration("INGRESS_IDLE_TIMEOUT", 60*time.Second),
		ShutdownTimeout:   l.Duration("INGRESS_SHUTDOWN_TIMEOUT", 20*time.Second),
	}
	c.DrainDelay = drainDelay(l, getenv)
	c.ElemeSecrets = elemeSecrets(l)
	if c.HTTPAddr == c.OpsAddr {
		l.Fail("OPS_ADDR", "must differ from HTTP_ADDR (%s)", c.HTTPAddr)
	}
	if c.HTTPWriteTimeout <= c.WriteTimeout {
		l.Fail("INGRESS_HTTP_WRITE_TIMEOUT", "must exceed INGRESS_WRITE_TIMEOUT (%s), or a Kafka answer could not be replied", c.WriteTimeout)
	}
	if c.MaxBody > MaxBodyLimit {
		l.Fail("INGRESS_MAX_BODY", "%d bytes is over %d: the raw envelope (the body in base64, the query, the headers) would not fit the raw topic's max.message.bytes (%d)",
			c.MaxBody, MaxBodyLimit, schemas.RawMaxMessageBytes)
	}
	return c, l.Err()
}

// MaxBodyLimit is the largest INGRESS_MAX_BODY whose envelope always fits a callbacks.raw.v1
// record: base64 makes the body 4/3 larger, and 32 KiB is left for the query, headers and JSON.
const MaxBodyLimit = (schemas.RawMaxMessageBytes - 32<<10) * 3 / 4

// drainDelay is how long the ingress stays up, not ready, before it stops accepting: load
// balancers need a moment to see /readyz fail. "0s" is allowed (tests, no load balancer).
func drainDelay(l *envconfig.Loader, getenv func(string) string) time.Duration {
	if v := strings.TrimSpace(getenv("INGRESS_DRAIN_DELAY")); v == "0" || v == "0s" {
		return 0
	}
	return l.Duration("INGRESS_DRAIN_DELAY", 0)
}

// elemeSecrets parses "appId=secret,appId=secret2,…". Errors name the item's position, never
// its value.
func elemeSecrets(l *envconfig.Loader) map[string][]string {
	out := map[string][]string{}
	for i, item := range l.List("ELEME_SECRETS", "") {
		app, secret, ok := strings.Cut(item, "=")
		app, secret = strings.TrimSpace(app), strings.TrimSpace(secret)
		if !ok || app == "" || secret == "" {
			l.Fail("ELEME_SECRETS", "item %d is not appId=secret", i+1)
			continue
		}
		out[app] = append(out[app], secret)
	}
	return out
}
