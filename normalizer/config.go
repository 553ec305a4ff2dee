package main

import (
	"time"

	"github.com/orderpipe/pipeline/normalizer/internal/consumer"
	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/redisio"
	"github.com/orderpipe/pipeline/plumbing/service"
	"github.com/orderpipe/pipeline/schemas"
)

// config is the normalizer's configuration; README.md "Configuration" documents every variable.
type config struct {
	service.Config
	Redis redisio.Config

	TopicRaw    string
	TopicRawDLQ string
	TopicStatus string
	GroupID     string
	DedupTTL    time.Duration
	KeyPrefix   string
	BatchMax    int
	// CommitInterval is the least time between two offset commits.
	CommitInterval time.Duration
	// DrainTimeout bounds the finishing of the batches in flight on SIGTERM; StallTimeout is how
	// long the loop may hold records without finishing a batch before it is not ready.
	DrainTimeout time.Duration
	StallTimeout time.Duration
}

// loadConfig reads and validates everything, listing every problem at once.
func loadConfig(getenv func(string) string) (config, error) {
	l := envconfig.New(getenv)
	c := config{
		Config:         service.Load(l, ":8082"),
		Redis:          redisio.Load(l, "127.0.0.1:6379"),
		TopicRaw:       l.String("TOPIC_RAW", schemas.TopicRaw),
		TopicRawDLQ:    l.String("TOPIC_RAW_DLQ", schemas.TopicRawDLQ),
		TopicStatus:    l.String("TOPIC_STATUS", schemas.TopicStatus),
		GroupID:        l.String("KAFKA_GROUP_ID", "normalizer"),
		DedupTTL:       l.Duration("DEDUP_TTL", 168*time.Hour),
		KeyPrefix:      l.String("REDIS_KEY_PREFIX", "op:"),
		BatchMax:       l.Int("BATCH_MAX_RECORDS", 2000, 1, 100000),
		CommitInterval: l.Duration("COMMIT_INTERVAL", consumer.DefaultCommitInterval),
		DrainTimeout:   l.Duration("DRAIN_TIMEOUT", 20*time.Second),
		StallTimeout:   l.Duration("STALL_TIMEOUT", 2*time.Minute),
	}
	if c.TopicRaw == c.TopicStatus || c.TopicRaw == c.TopicRawDLQ || c.TopicStatus == c.TopicRawDLQ {
		l.Fail("TOPIC_RAW/TOPIC_STATUS/TOPIC_RAW_DLQ", "must be three different topics")
	}
	if c.DedupTTL < time.Minute {
		l.Fail("DEDUP_TTL", "%s is shorter than a minute; it must outlast every platform retry (default 168h)", c.DedupTTL)
	}
	return c, l.Err()
}
