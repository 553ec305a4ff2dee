// Command devstack is `make run`: it starts the whole pipeline on this machine — the Dangdang
// sandbox, the ingress, the normalizer and the dispatcher as separate processes — and prints how to
// send it a callback and see what comes out. Where KAFKA_BROKERS / REDIS_ADDR are not set it embeds
// a Kafka (franz-go's kfake) and a Redis (miniredis) on fixed 127.0.0.1 ports, so a newcomer needs
// nothing else. Ctrl-C stops everything cleanly.
//
//	devstack [-bin DIR]           run the pipeline
//	devstack tail TOPIC           print a topic's records from the beginning, following
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "tail" {
		err = tail(ctx, os.Args[2:], os.Getenv, os.Stdout)
	} else {
		err = run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

// brokersFrom returns KAFKA_BROKERS, or the embedded broker's address.
func brokersFrom(getenv func(string) string) []string {
	if v := getenv("KAFKA_BROKERS"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{embeddedKafka}
}

func printf(w io.Writer, format string, args ...any) { fmt.Fprintf(w, format, args...) }
