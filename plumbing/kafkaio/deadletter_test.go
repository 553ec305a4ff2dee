package kafkaio_test

import (
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/schemas"
)

// A dead letter is the source record unchanged plus the contract's headers; a record that was
// dead-lettered before and replayed does not carry two sets of them, and the error text is bounded.
func TestDeadLetter(t *testing.T) {
	src := kafka.Message{Topic: "in", Partition: 4, Offset: 77, Key: []byte("k"), Value: []byte("v"), Headers: []kafka.Header{
		{Key: "traceparent", Value: []byte("tp")},
		{Key: schemas.HeaderDLQReason, Value: []byte("old")},
	}}
	at := time.Date(2026, 11, 22, 8, 0, 0, 5_000_000, time.UTC)
	got := kafkaio.DeadLetter(src, "svc", "decode", strings.Repeat("x", 5000), at)
	if string(got.Key) != "k" || string(got.Value) != "v" || got.Topic != "" {
		t.Errorf("record = %+v, want key and value unchanged and no topic set", got)
	}
	want := map[string]string{
		"traceparent": "tp", schemas.HeaderDLQReason: "decode", schemas.HeaderDLQService: "svc",
		schemas.HeaderDLQTime: "2026-11-22T08:00:00.005Z", schemas.HeaderDLQTopic: "in",
		schemas.HeaderDLQPartition: "4", schemas.HeaderDLQOffset: "77",
	}
	seen := map[string]int{}
	for _, h := range got.Headers {
		seen[h.Key]++
		if w, ok := want[h.Key]; ok && string(h.Value) != w {
			t.Errorf("%s = %q, want %q", h.Key, h.Value, w)
		}
	}
	for k := range want {
		if seen[k] != 1 {
			t.Errorf("header %s appears %d times, want once", k, seen[k])
		}
	}
	if e := kafkaio.Header(got, schemas.HeaderDLQError); len(e) != 1024 {
		t.Errorf("dlq_error is %d bytes, want bounded to 1024", len(e))
	}
}
