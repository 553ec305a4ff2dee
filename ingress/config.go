package main

// The ingress configuration is loaded from the environment, with every problem listed at once.
// Secrets are never echoed in an error message.

import (
	"strings"
	"time"

	"github.com/orderpipe/pipeline/ingress/internal/eleme"
	"github.com/orderpipe/pipeline/ingress/internal/server"
	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/service"
	"github.com/orderpipe/pipeline/schemas"
)

// config is the ingress configuration. README.md "Configuration" documents every field.
type config struct {
	service.Config
	HTTPAddr string

	// DianwodaSecrets: any one may sign (rotation). Empty: the Dianwoda route answers 503.
	DianwodaSecrets []string
	// ElemeSecrets: appId → its secrets. Empty: the Eleme route answers 503.
	ElemeSecrets map[string][]string

	TopicRaw string
	// AcceptedLog is INGRESS_LOG_ACCEPTED: all, sampled or none (server.AcceptedLog*).
	AcceptedLog string

	MaxBody           int64
	MaxBodyMemory     int64
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

// loadConfig reads the configuration through getenv.
func loadConfig(getenv func(string) string) (config, error) {
	l := envconfig.New(getenv)
	c := config{
		Config:            service.Load(l, ":8081"),
		HTTPAddr:          l.Addr("HTTP_ADDR", ":8080"),
		DianwodaSecrets:   l.SecretList("DIANWODA_SECRETS"),
		TopicRaw:          l.String("TOPIC_RAW", schemas.TopicRaw),
		AcceptedLog:       strings.ToLower(l.String("INGRESS_LOG_ACCEPTED", server.AcceptedLogSampled)),
		MaxBody:           l.Bytes("INGRESS_MAX_BODY", 1<<20),
		MaxBodyMemory:     l.Bytes("INGRESS_MAX_BODY_MEMORY", 32<<20),
		MaxInflight:       l.Int("INGRESS_MAX_INFLIGHT", 4096, 1, 1<<20),
		WriteTimeout:      l.Duration("INGRESS_WRITE_TIMEOUT", 5*time.Second),
		PingInterval:      l.Duration("INGRESS_KAFKA_PING_INTERVAL", time.Second),
		ReadHeaderTimeout: l.Duration("INGRESS_READ_HEADER_TIMEOUT", 5*time.Second),
		ReadTimeout:       l.Duration("INGRESS_READ_TIMEOUT", 10*time.Second),
		HTTPWriteTimeout:  l.Duration("INGRESS_HTTP_WRITE_TIMEOUT", 15*time.Second),
		IdleTimeout:       l.Duration("INGRESS_IDLE_TIMEOUT", 60*time.Second),
		ShutdownTimeout:   l.Duration("INGRESS_SHUTDOWN_TIMEOUT", 20*time.Second),
	}
	switch c.AcceptedLog {
	case server.AcceptedLogAll, server.AcceptedLogSampled, server.AcceptedLogNone:
	default:
		l.Fail("INGRESS_LOG_ACCEPTED", "%q is not one of all, sampled, none", c.AcceptedLog)
	}
	c.DrainDelay = drainDelay(l, getenv)
	c.ElemeSecrets = eleme.LoadSecrets(l)
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
	if c.MaxBodyMemory < c.MaxBody {
		l.Fail("INGRESS_MAX_BODY_MEMORY", "%d bytes is under INGRESS_MAX_BODY (%d): a body at the limit could never be read", c.MaxBodyMemory, c.MaxBody)
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
