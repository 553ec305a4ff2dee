package main

import (
	"fmt"
	"net"
	"net/url"
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
	ParkAfter        time.Duration
	RetryCodes       []string
	StateTTL         time.Duration

	Grace            time.Duration
	MaxInFlight      int
	MaxPartitionSpan int
	CommitInterval   time.Duration
	FetchLinger      time.Duration

	Shops map[string]*routing.Shop
	Table *routing.Table
}

// dispatchLinger is the dispatcher's default FETCH_LINGER and KAFKA_PRODUCER_LINGER, longer than
// the other services' 2 ms: no platform waits on its writes (the contract puts no latency on the
// routed topics, and a Dangdang call waits its 1 s batch window anyway), while every fetch and
// produce request it makes costs the co-located broker as much as the ingress's and the
// normalizer's. At 2,000 callbacks/s it cut the dispatcher from 0.15-0.18 to 0.07-0.09 cores and
// the broker's median from 0.44 to 0.39 (docs/performance-history.md, seventh session), for at most
// 2 x 20 ms more before an event reaches its routed topic; under a backlog a fetch of 64 KiB and
// 16 KiB of records waiting end the lingers at once.
const dispatchLinger = 20 * time.Millisecond

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
		ParkAfter:        l.Duration("DANGDANG_PARK_AFTER", 15*time.Minute),
		RetryCodes:       l.List("DANGDANG_RETRY_CODES", "1208"),
		StateTTL:         l.Duration("DANGDANG_STATE_TTL", 30*24*time.Hour),

		Grace:            l.Duration("SHUTDOWN_GRACE", 10*time.Second),
		MaxInFlight:      l.Int("MAX_IN_FLIGHT", 50000, 1, 10_000_000),
		MaxPartitionSpan: l.Int("MAX_PARTITION_SPAN", 10000, 2, 10_000_000),
		CommitInterval:   l.Duration("COMMIT_INTERVAL", time.Second),
		FetchLinger:      l.DurationIn("FETCH_LINGER", dispatchLinger, 0, time.Second),
	}
	c.Kafka = c.Kafka.WithDefaultProducerLinger(dispatchLinger)
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
	if err := demoShopAgainstSandboxOnly(shops, c.APIURL); err != nil {
		l.Fail("DANGDANG_SHOPS", "%v", err)
	}
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

// demoShopAgainstSandboxOnly refuses the embedded demo shop (shops.yaml: the made-up
// credentials of the worked sign example) against anything but a sandbox. Against the real
// Dangdang every write-back would fail, or worse, go out under credentials nobody owns. A shop is
// the demo shop when its app key and secret are the embedded one's, whatever its name.
func demoShopAgainstSandboxOnly(shops map[string]*routing.Shop, apiURL string) error {
	if isSandboxURL(apiURL) {
		return nil
	}
	demo, err := routing.LoadShops("", defaultShops, func(string) string { return "" })
	if err != nil {
		return nil // the embedded file is checked by the default config's own load
	}
	for name, s := range shops {
		for _, d := range demo {
			if s.AppKey == d.AppKey && s.AppSecret == d.AppSecret {
				u := apiURL
				if p, err := url.Parse(apiURL); err == nil {
					u = p.Scheme + "://" + p.Host // never the query: it may hold credentials
				}
				return fmt.Errorf("shop %q is the embedded demo shop (made-up credentials only the sandbox accepts) but DANGDANG_API_URL %s is not a sandbox (loopback or the ddsandbox service): set DANGDANG_SHOPS to the real shops (in Kubernetes the orderpipe-dangdang-shops Secret) or point DANGDANG_API_URL at the sandbox", name, u)
			}
		}
	}
	return nil
}

// isSandboxURL: the sandbox runs on this machine (loopback) or as the ddsandbox service of
// docker-compose.yml / a test cluster.
func isSandboxURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" || host == "ddsandbox" || strings.HasPrefix(host, "ddsandbox.") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
