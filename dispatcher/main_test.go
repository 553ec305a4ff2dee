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
		// Deadline timers of those admin requests, firing as the process exits.
		goleak.IgnoreTopFunction("context.WithDeadlineCause.func2"),
	)
}
