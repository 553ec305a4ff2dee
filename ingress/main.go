// Command ingress receives Dianwoda and Eleme status callbacks, verifies their signatures and
// writes each one, untouched, to callbacks.raw.v1 before it answers the platform's "success".
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
		fmt.Fprintln(os.Stderr, "ingress:", err)
		os.Exit(1)
	}
}
