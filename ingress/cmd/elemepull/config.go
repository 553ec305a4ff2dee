package main

import (
	"sort"
	"strings"
	"time"

	"github.com/orderpipe/pipeline/ingress/internal/eleme"
	"github.com/orderpipe/pipeline/ingress/internal/elemeapi"
	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/redisio"
	"github.com/orderpipe/pipeline/plumbing/service"
	"github.com/orderpipe/pipeline/schemas"
)

// cfg is the poller's configuration; README.md "Eleme compensation" documents every variable.
type cfg struct {
	service.Config
	Redis         redisio.Config
	KeyPrefix     string
	TopicRaw      string
	Apps          []elemeapi.App
	APIURL        string
	APITimeout    time.Duration
	Interval      time.Duration
	PageSize      int
	LeaseTTL      time.Duration
	BackoffMin    time.Duration
	BackoffMax    time.Duration
	RateLimitWait time.Duration
	WriteTimeout  time.Duration
}

func loadConfig(getenv func(string) string) (cfg, error) {
	l := envconfig.New(getenv)
	c := cfg{
		Config:        service.Load(l, ":8084"),
		Redis:         redisio.Load(l, "127.0.0.1:6379"),
		KeyPrefix:     l.String("REDIS_KEY_PREFIX", "op:"),
		TopicRaw:      l.String("TOPIC_RAW", schemas.TopicRaw),
		APIURL:        l.String("ELEME_API_URL", elemeapi.ProductionURL),
		APITimeout:    l.Duration("ELEME_API_TIMEOUT", 10*time.Second),
		Interval:      l.Duration("ELEME_PULL_INTERVAL", 30*time.Second),
		PageSize:      l.Int("ELEME_PULL_PAGE_SIZE", elemeapi.DefaultPageSize, 1, elemeapi.MaxPageSize),
		LeaseTTL:      l.Duration("ELEME_PULL_LEASE_TTL", 30*time.Second),
		BackoffMin:    l.Duration("ELEME_PULL_BACKOFF_MIN", time.Second),
		BackoffMax:    l.Duration("ELEME_PULL_BACKOFF_MAX", 5*time.Minute),
		RateLimitWait: l.Duration("ELEME_PULL_RATE_LIMIT_WAIT", time.Minute),
		WriteTimeout:  l.Duration("KAFKA_WRITE_TIMEOUT", 10*time.Second),
	}
	if strings.EqualFold(c.APIURL, "sandbox") {
		c.APIURL = elemeapi.SandboxURL
	}
	secrets := eleme.LoadSecrets(l)
	keys := map[string]string{}
	for i, item := range l.List("ELEME_APP_KEYS", "") {
		app, key, ok := strings.Cut(item, "=")
		app, key = strings.TrimSpace(app), strings.TrimSpace(key)
		if !ok || app == "" || key == "" {
			l.Fail("ELEME_APP_KEYS", "item %d is not appId=appKey", i+1)
			continue
		}
		keys[app] = key
	}
	if len(keys) == 0 {
		l.Fail("ELEME_APP_KEYS", "no app to poll: set appId=appKey pairs (the secrets come from ELEME_SECRETS)")
	}
	ids := make([]string, 0, len(keys))
	for id := range keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		s := secrets[id]
		if len(s) == 0 {
			l.Fail("ELEME_SECRETS", "no secret for app %s of ELEME_APP_KEYS", id)
			continue
		}
		// The first secret of an app is its current one (later ones are kept for pushes
		// signed before a rotation): API calls sign with it.
		c.Apps = append(c.Apps, elemeapi.App{AppID: id, AppKey: keys[id], Secret: s[0]})
	}
	if c.Interval < 100*time.Millisecond {
		l.Fail("ELEME_PULL_INTERVAL", "%s is under 100ms", c.Interval)
	}
	if c.LeaseTTL < 3*time.Second {
		l.Fail("ELEME_PULL_LEASE_TTL", "%s is under 3s", c.LeaseTTL)
	}
	if c.BackoffMax < c.BackoffMin {
		l.Fail("ELEME_PULL_BACKOFF_MAX", "must be at least ELEME_PULL_BACKOFF_MIN (%s)", c.BackoffMin)
	}
	return c, l.Err()
}
