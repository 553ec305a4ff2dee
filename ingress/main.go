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

// gcPercent is the collector's target when GOGC is not set: a quarter as many collections as Go's
// default of 100. The ingress's live heap is a few MiB of requests in flight, bounded by
// INGRESS_MAX_BODY_MEMORY, and GOMEMLIMIT, where set, still caps the heap. Against 200, under the
// side-by-side harness's load: 2.6 % less CPU per callback (median of 8 runs of both loaded at
// once) for a peak RSS of 37-39 MiB instead of 29 (docs/performance-history.md, "Seventeenth
// session").
const gcPercent = 400

func main() {
	service.SetGCPercent(os.Getenv, gcPercent)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ingress:", err)
		os.Exit(1)
	}
}
