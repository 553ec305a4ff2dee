package main

import (
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/dispatcher/internal/writeback"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

// TestRedisMasterNameHonoured: with REDIS_MASTER_NAME set and REDIS_ADDR listing the sentinels,
// the dispatcher keeps its Dangdang state on the Sentinel group's primary and writes an order
// back. (It used to build its client from REDIS_ADDR alone, talking to the sentinels as if they
// were Redis, and never became ready.)
func TestRedisMasterNameHonoured(t *testing.T) {
	s := testenv.RedisSentinel(t)
	h := newHarness(t, map[string]string{"REDIS_ADDR": strings.Join(s.Addrs, ","), "REDIS_MASTER_NAME": s.MasterName})
	h.produce(event("dianwoda", "DD7100000001", schemas.StatusDelivered, time.Now()))
	stop := h.start()
	res := results(t, h.read("TOPIC_DANGDANG_RESULTS", 60*time.Second, func(m []kafka.Message) bool { return len(m) >= 1 }))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Outcome != writeback.OutcomeAccepted || res[0].DangdangOrderID != "7100000001" {
		t.Fatalf("results = %+v, want order 7100000001 accepted", res)
	}
}
