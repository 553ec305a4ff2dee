// Command elemepull is the Eleme compensation poller (internal/elemepull): for every configured
// Eleme app it pulls the pushes Eleme failed to deliver, writes them to callbacks.raw.v1 as the
// ingress would have written the pushes, and confirms them only after Kafka acknowledged them.
// One instance polls each app at a time (a Redis lease); run one replica, a second is a standby.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "elemepull:", err)
		os.Exit(1)
	}
}
