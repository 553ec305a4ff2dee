package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
)

// tail prints every record of a topic from the beginning and keeps following it.
func tail(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: devstack tail TOPIC")
	}
	// The connection variables are the services' (KAFKA_TLS*, KAFKA_SASL_*); without
	// KAFKA_BROKERS, the embedded broker.
	l := envconfig.New(func(k string) string {
		if k == "KAFKA_BROKERS" {
			return strings.Join(brokersFrom(getenv), ",")
		}
		return getenv(k)
	})
	conn := kafkaio.LoadConn(l)
	if err := l.Err(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	r := conn.NewReader(kafkaio.ReaderConfig{
		GroupID: fmt.Sprintf("devstack-tail-%d", time.Now().UnixNano()),
		Topic:   fs.Arg(0),
	})
	defer r.Close()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return err
		}
		printRecord(stdout, m)
	}
}

func printRecord(w io.Writer, m kafka.Message) {
	var hs []string
	for _, h := range m.Headers {
		hs = append(hs, h.Key+"="+string(h.Value))
	}
	fmt.Fprintf(w, "--- %s/%d@%d key=%s\n    headers: %s\n", m.Topic, m.Partition, m.Offset, m.Key, strings.Join(hs, " "))
	var pretty bytes.Buffer
	if json.Indent(&pretty, m.Value, "    ", "  ") == nil {
		fmt.Fprintf(w, "    %s\n", pretty.Bytes())
		return
	}
	fmt.Fprintf(w, "    %s\n", m.Value)
}
