package main

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// kafka-go Transports keep idle broker connections for their IdleTimeout (30 s); the
		// plumbing's admin clients (EnsureTopics, Ping, testenv) do not close theirs. Everything
		// else the dispatcher starts must be gone.
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*conn).run"),
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.async.await"),
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*connGroup).connect.func1"),
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*connPool).discover"),
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*connGroup).grabConnOrConnect.func1"),
		// go-redis probes a pool whose dials all failed (a wrong password, no sentinel) once a
		// second until the pool is closed; it ends within a second of Close.
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
		// Deadline timers of those admin requests, firing as the process exits.
		goleak.IgnoreTopFunction("context.WithDeadlineCause.func2"),
	)
}
