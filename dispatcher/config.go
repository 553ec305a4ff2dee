package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/orderpipe/pipeline/dispatcher/internal/dangdang"
	"github.com/orderpipe/pipeline/dispatcher/internal/routing"
	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/redisio"
	"github.com/orderpipe/pipeline/plumbing/service"
	"github.com/orderpipe/pipeline/schemas"
)

// config is the dispatcher's configuration; README.md "Configuration" documents every variable.
type config struct {
	service.Config
	Redis redisio.Config

	RedisPrefix    string
	TracesExporter string
	GroupID        string
	TopicStatus    string
	TopicDelivery  string
	TopicLifecycle string
	TopicRefund    string
	TopicResults   string
	TopicDLQ       string

	APIURL           string
	Window           time.Duration
	BatchSize        int
	CallTimeout      time.Duration
	MaxAttempts      int
	BackoffMin       time.Duration
	BackoffMax       time.Duration
	RateLimitBackoff time.Duration
	PauseProbe       time.Duration
	RetryCodes       []string
	StateTTL         time.Duration

	Grace          time.Duration
	MaxInFlight    int
	CommitInterval time.Duration

	Shops map[string]*routing.Shop
	Table *routing.Table
}

// loadConfig reads and validates everything, listing every problem at once.
func loadConfig(getenv func(string) string) (*config, error) {
	l := envconfig.New(getenv)
	c := &config{
		Config:         service.Load(l, ":8083"),
		Redis:          redisio.Load(l, "127.0.0.1:6379"),
		RedisPrefix:    l.String("REDIS_KEY_PREFIX", "op:"),
		TracesExporter: l.String("OTEL_TRACES_EXPORTER", "none"),
		GroupID:        l.String("KAFKA_GROUP_ID", "dispatcher"),
		TopicStatus:    l.String("TOPIC_STATUS", schemas.TopicStatus),
		TopicDelivery:  l.String("TOPIC_DELIVERY", schemas.TopicDelivery),
		TopicLifecycle: l.String("TOPIC_LIFECYCLE", schemas.TopicLifecycle),
		TopicRefund:    l.String("TOPIC_REFUND", schemas.TopicRefund),
		TopicResults:   l.String("TOPIC_DANGDANG_RESULTS", schemas.TopicDangdangResult),
		TopicDLQ:       l.String("TOPIC_STATUS_DLQ", schemas.TopicStatusDLQ),

		APIURL:           l.String("DANGDANG_API_URL", dangdang.DefaultURL),
		Window:           l.Duration("DANGDANG_BATCH_WINDOW", time.Second),
		BatchSize:        l.Int("DANGDANG_BATCH_SIZE", 100, 1, dangdang.MaxOrders),
		CallTimeout:      l.Duration("DANGDANG_TIMEOUT", 10*time.Second),
		MaxAttempts:      l.Int("DANGDANG_MAX_ATTEMPTS", 8, 1, 1000),
		BackoffMin:       l.Duration("DANGDANG_BACKOFF_MIN", 200*time.Millisecond),
		BackoffMax:       l.Duration("DANGDANG_BACKOFF_MAX", 30*time.Second),
		RateLimitBackoff: l.Duration("DANGDANG_RATE_LIMIT_BACKOFF", 10*time.Second),
		PauseProbe:       l.Duration("DANGDANG_PAUSE_PROBE", time.Minute),
		RetryCodes:       l.List("DANGDANG_RETRY_CODES", "1208"),
		StateTTL:         l.Duration("DANGDANG_STATE_TTL", 30*24*time.Hour),

		Grace:          l.Duration("SHUTDOWN_GRACE", 10*time.Second),
		MaxInFlight:    l.Int("MAX_IN_FLIGHT", 50000, 1, 10_000_000),
		CommitInterval: l.Duration("COMMIT_INTERVAL", time.Second),
	}
	if c.BackoffMin > c.BackoffMax {
		l.Fail("DANGDANG_BACKOFF_MIN", "%s is above DANGDANG_BACKOFF_MAX %s", c.BackoffMin, c.BackoffMax)
	}
	for name, t := range map[string]string{"TOPIC_STATUS": c.TopicStatus, "TOPIC_DANGDANG_RESULTS": c.TopicResults, "TOPIC_STATUS_DLQ": c.TopicDLQ} {
		if strings.ContainsAny(t, " ,/") {
			l.Fail(name, "%q is not a topic name", t)
		}
	}
	shops, err := routing.LoadShops(getenv("DANGDANG_SHOPS"), defaultShops, getenv)
	if err != nil {
		l.Fail("DANGDANG_SHOPS", "%v", err)
	}
	c.Shops = shops
	routes, src := defaultRoutes, "default routing table"
	if p := strings.TrimSpace(getenv("ROUTES_FILE")); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			l.Fail("ROUTES_FILE", "%v", err)
		}
		routes, src = b, p
	}
	if shops != nil && routes != nil {
		names := map[string]bool{}
		for n := range shops {
			names[n] = true
		}
		vars := map[string]string{"TOPIC_DELIVERY": c.TopicDelivery, "TOPIC_LIFECYCLE": c.TopicLifecycle, "TOPIC_REFUND": c.TopicRefund}
		t, err := routing.Load(routes, vars, names)
		if err != nil {
			l.Fail("ROUTES_FILE", "%s: %v", src, err)
		}
		c.Table = t
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}
