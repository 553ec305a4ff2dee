// Package redisio builds the one Redis client every service uses, from environment variables:
// a single node, a Sentinel-managed primary (REDIS_MASTER_NAME, REDIS_ADDR listing the sentinels)
// or a Redis Cluster (REDIS_CLUSTER=true, seeds in REDIS_ADDR), with ACL credentials, TLS and
// bounded timeouts. The mode is always what the operator chose: several addresses never turn a
// client into a cluster client by themselves, and TLS or authentication is never dropped.
//
// Callers write code for redis.UniversalClient. In Cluster mode, every key that one Lua script or
// one MULTI touches must hash to one slot: the services put the order in a hash tag
// ("<prefix>{platform:order_id}…").
package redisio

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/plumbing/envconfig"
)

// Modes of Config.Mode.
const (
	ModeSingle   = "single"
	ModeSentinel = "sentinel"
	ModeCluster  = "cluster"
)

// Config is the Redis connection as the environment describes it.
type Config struct {
	// Addrs is REDIS_ADDR: the node, the sentinels, or the cluster seeds (comma-separated).
	Addrs []string
	// MasterName is REDIS_MASTER_NAME: the Sentinel group's name; set means Sentinel mode.
	MasterName string
	// Cluster is REDIS_CLUSTER.
	Cluster bool
	// Username and Password are REDIS_USERNAME and REDIS_PASSWORD (ACL; each also as _FILE).
	Username string
	Password envconfig.Secret
	// SentinelUsername and SentinelPassword authenticate to the sentinels themselves
	// (REDIS_SENTINEL_USERNAME, REDIS_SENTINEL_PASSWORD); empty when they need none.
	SentinelUsername string
	SentinelPassword envconfig.Secret
	// DB is REDIS_DB; refused with Cluster, which has only database 0.
	DB int
	// TLS and its files mirror Kafka's variables: REDIS_TLS, REDIS_TLS_CA_FILE (system roots when
	// empty), REDIS_TLS_CERT_FILE + REDIS_TLS_KEY_FILE, REDIS_TLS_SERVER_NAME,
	// REDIS_TLS_INSECURE_SKIP_VERIFY (never the default; logged as a warning).
	TLS                   bool
	TLSCAFile             string
	TLSCertFile           string
	TLSKeyFile            string
	TLSServerName         string
	TLSInsecureSkipVerify bool

	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	PoolSize     int
}

// Mode is single, sentinel or cluster.
func (c Config) Mode() string {
	switch {
	case c.MasterName != "":
		return ModeSentinel
	case c.Cluster:
		return ModeCluster
	}
	return ModeSingle
}

// Load reads the Redis variables through l and records every problem in l, conflicting
// settings each named. defaultAddr is REDIS_ADDR's default.
func Load(l *envconfig.Loader, defaultAddr string) Config {
	c := Config{
		Addrs:                 l.HostPorts("REDIS_ADDR", defaultAddr),
		MasterName:            l.String("REDIS_MASTER_NAME", ""),
		Cluster:               l.Bool("REDIS_CLUSTER", false),
		Password:              l.Secret("REDIS_PASSWORD"),
		SentinelPassword:      l.Secret("REDIS_SENTINEL_PASSWORD"),
		DB:                    l.Int("REDIS_DB", 0, 0, 1<<20),
		TLS:                   l.Bool("REDIS_TLS", false),
		TLSCAFile:             l.String("REDIS_TLS_CA_FILE", ""),
		TLSCertFile:           l.String("REDIS_TLS_CERT_FILE", ""),
		TLSKeyFile:            l.String("REDIS_TLS_KEY_FILE", ""),
		TLSServerName:         l.String("REDIS_TLS_SERVER_NAME", ""),
		TLSInsecureSkipVerify: l.Bool("REDIS_TLS_INSECURE_SKIP_VERIFY", false),
		DialTimeout:           l.Duration("REDIS_DIAL_TIMEOUT", 2*time.Second),
		ReadTimeout:           l.Duration("REDIS_READ_TIMEOUT", 3*time.Second),
		WriteTimeout:          l.Duration("REDIS_WRITE_TIMEOUT", 3*time.Second),
		PoolSize:              l.Int("REDIS_POOL_SIZE", 0, 0, 100000),
	}
	c.Username, _ = l.FromFile("REDIS_USERNAME")
	c.SentinelUsername, _ = l.FromFile("REDIS_SENTINEL_USERNAME")
	if c.Cluster && c.MasterName != "" {
		l.Conflict("choose Cluster or Sentinel", "REDIS_CLUSTER", "REDIS_MASTER_NAME")
	}
	if c.Cluster && c.DB != 0 {
		l.Conflict("Redis Cluster has only database 0", "REDIS_CLUSTER", "REDIS_DB")
	}
	if c.MasterName == "" && (c.SentinelPassword != "" || c.SentinelUsername != "") {
		l.Fail("REDIS_SENTINEL_PASSWORD", "is set but REDIS_MASTER_NAME is not (Sentinel mode)")
	}
	if c.Mode() == ModeSingle && len(c.Addrs) > 1 {
		l.Fail("REDIS_ADDR", "lists %d addresses; set REDIS_CLUSTER=true for a cluster or REDIS_MASTER_NAME for Sentinel", len(c.Addrs))
	}
	if c.Password == "" && c.Username != "" {
		l.Fail("REDIS_PASSWORD", "is required with REDIS_USERNAME")
	}
	if !c.TLS {
		for name, v := range map[string]string{"REDIS_TLS_CA_FILE": c.TLSCAFile, "REDIS_TLS_CERT_FILE": c.TLSCertFile,
			"REDIS_TLS_KEY_FILE": c.TLSKeyFile, "REDIS_TLS_SERVER_NAME": c.TLSServerName} {
			if v != "" {
				l.Fail(name, "is set but REDIS_TLS is not true; set REDIS_TLS=true to use TLS")
			}
		}
		if c.TLSInsecureSkipVerify {
			l.Fail("REDIS_TLS_INSECURE_SKIP_VERIFY", "is true but REDIS_TLS is not true")
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		l.Conflict("set both (mutual TLS) or neither", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE")
	}
	if c.ReadTimeout < 10*time.Millisecond || c.WriteTimeout < 10*time.Millisecond {
		l.Fail("REDIS_READ_TIMEOUT/REDIS_WRITE_TIMEOUT", "must be at least 10ms")
	}
	if c.TLS {
		if _, err := c.tlsConfig(); err != nil {
			var ve *envconfig.VarError
			if errors.As(err, &ve) {
				l.Fail(ve.Variable, "%v", ve.Err)
			}
		}
	}
	return c
}

func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	cfg, err := envconfig.TLSFiles{Prefix: "REDIS", CAFile: c.TLSCAFile, CertFile: c.TLSCertFile, KeyFile: c.TLSKeyFile,
		ServerName: c.TLSServerName, InsecureSkipVerify: c.TLSInsecureSkipVerify}.Config()
	if err != nil {
		return nil, err
	}
	if cfg.ServerName == "" && len(c.Addrs) > 0 && c.Mode() == ModeSingle {
		// go-redis verifies the name of the address it dials; for one node that is REDIS_ADDR's host.
		cfg.ServerName, _, _ = net.SplitHostPort(c.Addrs[0])
	}
	return cfg, nil
}

// NewClient returns the client for c's mode: a single-node client, a Sentinel failover client
// (always talking to the current primary) or a Cluster client. The error names the variable
// of a certificate file that could not be used.
func (c Config) NewClient() (redis.UniversalClient, error) {
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	pw := c.Password.Reveal()
	switch c.Mode() {
	case ModeSentinel:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: c.MasterName, SentinelAddrs: c.Addrs,
			SentinelUsername: c.SentinelUsername, SentinelPassword: c.SentinelPassword.Reveal(),
			Username: c.Username, Password: pw, DB: c.DB, TLSConfig: tlsCfg,
			DialTimeout: c.DialTimeout, ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout, PoolSize: c.PoolSize,
			DialerRetries: dialAttempts,
		}), nil
	case ModeCluster:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: c.Addrs, Username: c.Username, Password: pw, TLSConfig: tlsCfg,
			DialTimeout: c.DialTimeout, ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout, PoolSize: c.PoolSize,
			DialerRetries: dialAttempts,
		}), nil
	}
	return redis.NewClient(&redis.Options{
		Addr: c.Addrs[0], Username: c.Username, Password: pw, DB: c.DB, TLSConfig: tlsCfg,
		DialTimeout: c.DialTimeout, ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout, PoolSize: c.PoolSize,
		DialerRetries: dialAttempts,
	}), nil
}

// dialAttempts is how often go-redis dials one address before a command fails. Its default, 5,
// hides an unreachable Sentinel group behind seconds of silent retries (past a readiness probe's
// deadline); the callers' loops retry with the pipeline's own policy instead.
const dialAttempts = 1

// Log writes the connection's settings at start (never a password), warns when TLS
// verification is off, and sends go-redis's own log lines to log from then on
// (RouteClientLogs): every service calls it once, at start.
func (c Config) Log(log *zap.Logger) {
	RouteClientLogs(log)
	log.Info("redis connection", zap.String("mode", c.Mode()), zap.Strings("addrs", c.Addrs), zap.String("master_name", c.MasterName),
		zap.Bool("tls", c.TLS), zap.String("username", c.Username), zap.Bool("password", c.Password != ""), zap.Int("db", c.DB))
	if c.TLS && c.TLSInsecureSkipVerify {
		log.Warn("REDIS_TLS_INSECURE_SKIP_VERIFY is true: Redis certificates are not verified; anyone on the path can read and change the traffic")
	}
}

// Ping checks the connection (in Cluster mode every primary the client knows) and returns an
// error naming the variable to check.
func (c Config) Ping(ctx context.Context, rdb redis.UniversalClient) error {
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return n.Ping(ctx).Err() })
		if err == nil {
			err = cc.Ping(ctx).Err()
		}
	} else {
		err = rdb.Ping(ctx).Err()
	}
	return c.Explain(err)
}

// Explain wraps err in an *envconfig.VarError naming the variable most likely at fault; errors
// it cannot place, and nil, are returned as they are.
func (c Config) Explain(err error) error { return envconfig.Explain(err, c.suspect) }

func (c Config) suspect(err error) string {
	var dns *net.DNSError
	msg := err.Error()
	switch {
	case strings.Contains(msg, "all sentinels specified in configuration are unreachable"):
		return "REDIS_ADDR (sentinels)"
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "NOPERM"),
		strings.Contains(msg, "invalid username-password"):
		return "REDIS_USERNAME/REDIS_PASSWORD"
	}
	if v := envconfig.SuspectTLS("REDIS", "server", err); v != "" {
		return v
	}
	switch {
	case strings.Contains(msg, "master") && strings.Contains(msg, "not found"), strings.Contains(msg, "no master"):
		return "REDIS_MASTER_NAME"
	case strings.Contains(msg, "cluster support disabled"):
		return "REDIS_CLUSTER (the server is not a cluster)"
	case errors.As(err, &dns), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, context.DeadlineExceeded):
		if c.Mode() == ModeSentinel {
			return "REDIS_ADDR (sentinels)"
		}
		return "REDIS_ADDR"
	case !c.TLS && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		return "REDIS_TLS (the server closed the connection: it may expect TLS)"
	}
	return ""
}
