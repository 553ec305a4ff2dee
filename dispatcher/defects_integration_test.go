package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/dispatcher/internal/ddsandbox"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

// Defect 3: an order waiting on a paused (176) shop must not pin its partition for ever. After
// the bound (a count of records tracked behind it, or a time) it is parked in the DLQ with a
// replayable reason and the partition's offsets are committed past it.
func TestPausedShopOrderIsParkedAndOffsetsMoveOn(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		others int
	}{
		{"count bound", map[string]string{"MAX_PARTITION_SPAN": "40", "DANGDANG_PARK_AFTER": "1h"}, 300},
		{"time bound", map[string]string{"DANGDANG_PARK_AFTER": "2s"}, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.env)
			if err := h.sb.Inject(ddsandbox.Fault{Kind: ddsandbox.FaultExpired, Shop: appKey}); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			evs := []schemas.StatusEvent{event("dianwoda", "DD1", schemas.StatusDelivered, now)}
			for i := range tt.others {
				ev := event("eleme", fmt.Sprintf("E%d", i), "accepted", now)
				ev.Kind = schemas.KindOrder
				evs = append(evs, ev)
			}
			h.produce(evs...)
			h.start()
			total := int64(len(evs))
			eventually(t, 60*time.Second, "every offset committed past the paused order", func() bool { return h.committed() == total })
			dlq := h.read("TOPIC_STATUS_DLQ", 10*time.Second, func(m []kafka.Message) bool { return len(m) >= 1 })
			if len(dlq) != 1 || string(dlq[0].Key) != "dianwoda:DD1" || kafkaio.Header(dlq[0], schemas.HeaderDLQReason) != "dangdang_parked" {
				t.Fatalf("dlq = %+v, want the paused order parked with reason dangdang_parked", dlq)
			}
		})
	}
}

// Defect 6: a routed topic that does not exist (auto-create off) stops the service at start,
// naming the topic, instead of retrying the whole batch for ever.
func TestMissingRoutedTopicFailsAtStart(t *testing.T) {
	h := newHarness(t, nil)
	missing := testenv.Name(t, "missing")
	h.env["TOPIC_REFUND"] = missing
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, func(k string) string { return h.env[k] }, &testenv.Buffer{}) }()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Fatalf("run() = %v, want an error naming %s", err, missing)
		}
	case <-time.After(60 * time.Second):
		cancel()
		<-errc
		t.Fatal("run() did not stop at start although a routed topic does not exist")
	}
}
