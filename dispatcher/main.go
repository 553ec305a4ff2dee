// Command dispatcher fans unified status events out to downstream topics by a routing table and
// writes delivery results back to Dangdang in full batches, committing an event's offset only
// once its outcome is final and recorded everywhere.
package main

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

//go:embed routes.yaml
var defaultRoutes []byte

//go:embed shops.yaml
var defaultShops []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dispatcher:", err)
		os.Exit(1)
	}
}
