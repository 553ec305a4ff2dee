// Command replay re-drives records back into the pipeline: dead letters to the topic they came
// from, or raw callbacks by time range, platform or order id. -dry-run says what it would do.
//
//	replay -from callbacks.dlq.v1 -reason decode -dry-run
//	replay -from callbacks.raw.v1 -to callbacks.raw.v1 -since 2026-11-22T10:00:00Z -until 2026-11-22T11:00:00Z -platform eleme
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/replay/internal/replay"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	// The connection is read from the same variables as the services' (KAFKA_BROKERS, KAFKA_TLS*,
	// KAFKA_SASL_*), so the tool reaches a secured cluster the way they do.
	l := envconfig.New(getenv)
	conn := kafkaio.LoadConn(l)
	if err := l.Err(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	brokers := strings.Join(conn.Brokers, ",")
	var o replay.Options
	var since, until string
	fs.StringVar(&brokers, "brokers", brokers, "Kafka brokers, comma-separated (default $KAFKA_BROKERS)")
	fs.StringVar(&o.From, "from", "", "source topic: a DLQ (callbacks.dlq.v1, orders.status.dlq.v1) or callbacks.raw.v1")
	fs.StringVar(&o.To, "to", "", "target topic (default: each dead letter's dlq_topic, the topic it came from)")
	fs.StringVar(&since, "since", "", "only records at or after this time (RFC 3339)")
	fs.StringVar(&until, "until", "", "only records at or before this time (RFC 3339)")
	fs.StringVar(&o.Platform, "platform", "", "only this platform (dianwoda, eleme)")
	fs.StringVar(&o.OrderID, "order-id", "", "only this order id")
	fs.StringVar(&o.Reason, "reason", "", "only dead letters with this dlq_reason")
	fs.IntVar(&o.Limit, "limit", 0, "stop after this many records (0: no limit)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "say what would be replayed; write nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.From == "" {
		return fmt.Errorf("-from is required")
	}
	var err error
	if o.Since, err = parseTime("since", since); err != nil {
		return err
	}
	if o.Until, err = parseTime("until", until); err != nil {
		return err
	}
	conn.Brokers = strings.Split(brokers, ",")
	o.Conn = conn
	o.Out = stdout
	_, err = replay.Run(ctx, o)
	return err
}

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("-%s %q: want RFC 3339, e.g. 2026-11-22T10:00:00Z", name, v)
	}
	return t, nil
}
