package redisio

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ClientLogsPerSecond bounds how many of go-redis's own lines RouteClientLogs lets through
// each second; the rest are dropped (zap's sampler) and counted by nothing: what they say
// (a dial that failed, a Sentinel that did not answer) is what readiness and the loops'
// errors already report, once per check.
const ClientLogsPerSecond = 5

// RouteClientLogs sends go-redis's own log lines to log as warnings, at most
// ClientLogsPerSecond a second. Unrouted, go-redis prints them to stderr as plain text, one
// per failed dial and per Sentinel asked: with the Sentinels unreachable, about 100 unstructured
// lines a second beside the service's JSON. go-redis has one logger per process, so this is
// a process-wide setting: a service calls it once, at start.
func RouteClientLogs(log *zap.Logger) {
	sampled := log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, ClientLogsPerSecond, 0)
	}))
	redis.SetLogger(clientLogger{log: sampled})
}

type clientLogger struct{ log *zap.Logger }

func (l clientLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn("redis client", zap.String("detail", fmt.Sprintf(format, v...)))
}
