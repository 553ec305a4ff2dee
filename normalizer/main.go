// Command normalizer consumes raw platform callbacks (callbacks.raw.v1), drops duplicates, guards
// each order against moving backwards, and emits unified status events (orders.status.v1).
// Poison records go to callbacks.dlq.v1. See README.md for guarantees and configuration.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/orderpipe/pipeline/plumbing/service"
)

func main() {
	service.SetGCPercent(os.Getenv, service.DefaultGCPercent)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "normalizer:", err)
		os.Exit(1)
	}
}
