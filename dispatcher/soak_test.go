package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/dispatcher/internal/ddsandbox"
	"github.com/orderpipe/pipeline/dispatcher/internal/writeback"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/schemas"
)

// rssMB is this process's resident set (the dispatcher runs in it), from /proc.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return -1
}

// A shop answering 176 for a long time under steady traffic (SOAK_PAUSE, default 20s; the long
// form is SOAK_PAUSE=5m): the other shop and the topics keep flowing and committing, the tracked
// records (committed lag) stay bounded, and after the shop is back every paused order has reached
// Dangdang or the DLQ; the parked ones, re-driven from the DLQ as the replay tool does, reach
// Dangdang too. Nothing is lost.
func TestPausedShopUnderSteadyTraffic(t *testing.T) {
	pause := 20 * time.Second
	if v := os.Getenv("SOAK_PAUSE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		pause = d
	}
	const rate = 200 // events/s: ¼ paused shop, ¼ healthy shop, ½ lifecycle
	const span = 300
	otherShop := ddsandbox.Shop{AppKey: "2100000001", Secret: "other_secret", Session: "S2"}
	h := newHarness(t, map[string]string{
		"DANGDANG_SHOPS": `{"shops":{"demo":{"app_key":"2100000000","app_secret":"test_secret","session":"SESSIONKEY"},` +
			`"other":{"app_key":"2100000001","app_secret":"other_secret","session":"S2"}}}`,
		"DANGDANG_PARK_AFTER":  (pause / 4).String(),
		"DANGDANG_PAUSE_PROBE": "1s",
		"MAX_PARTITION_SPAN":   strconv.Itoa(span),
		"LOG_LEVEL":            "warn",
	})
	h.sb.AddShop(otherShop)
	h.env["ROUTES_FILE"] = writeFile(t, "routes.yaml", `routes:
  - {name: delivery, match: {kind: delivery}, to: {topic: "${TOPIC_DELIVERY}"}}
  - {name: order, match: {kind: order}, to: {topic: "${TOPIC_LIFECYCLE}"}}
  - {name: dd-demo, match: {kind: delivery, order_id: '^DD(?P<order>[0-9]+)$'}, to: {dangdang: {shop: demo}}}
  - {name: dd-other, match: {kind: delivery, order_id: '^OT(?P<order>[0-9]+)$'}, to: {dangdang: {shop: other}}}
`)
	if err := h.sb.Inject(ddsandbox.Fault{Kind: ddsandbox.FaultExpired, Shop: appKey}); err != nil {
		t.Fatal(err)
	}
	stop := h.start()

	var mu sync.Mutex
	produced := 0
	var paused []string
	ctx, stopGen := context.WithCancel(context.Background())
	genDone := make(chan struct{})
	go func() {
		defer close(genDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ctx.Err() == nil; {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
			var evs []schemas.StatusEvent
			var ids []string
			for range rate / 10 {
				i++
				switch i % 4 {
				case 0:
					evs = append(evs, event("dianwoda", fmt.Sprintf("DD%d", 1000000+i), schemas.StatusDelivered, time.Now()))
					ids = append(ids, strconv.Itoa(1000000+i))
				case 1:
					evs = append(evs, event("dianwoda", fmt.Sprintf("OT%d", 1000000+i), schemas.StatusDelivered, time.Now()))
				default:
					ev := event("eleme", fmt.Sprintf("E%d", i), "accepted", time.Now())
					ev.Kind = schemas.KindOrder
					evs = append(evs, ev)
				}
			}
			h.produce(evs...)
			mu.Lock()
			produced += len(evs)
			paused = append(paused, ids...)
			mu.Unlock()
		}
	}()

	// While paused: the committed offsets keep up with the traffic, within a bound.
	var maxRSS, maxLag float64
	began := time.Now()
	lastCommitted := int64(0)
	stalls, run, longest := 0, 0, 0
	for time.Since(began) < pause {
		time.Sleep(time.Second)
		c := h.committed()
		if c < 0 {
			continue
		}
		mu.Lock()
		lag := float64(produced) - float64(c)
		mu.Unlock()
		maxLag = max(maxLag, lag)
		maxRSS = max(maxRSS, rssMB())
		if c == lastCommitted && time.Since(began) > 5*time.Second {
			stalls++
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
		lastCommitted = c
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("paused %s at %d events/s: max committed lag %.0f records, max RSS %.0f MB, heap in use %.0f MB at the end, %d one-second samples without commit progress (longest run %d s)",
		pause, rate, maxLag, maxRSS, float64(ms.HeapInuse)/(1<<20), stalls, longest)
	if limit := float64(3*span + rate*int(pause/4/time.Second) + rate*5); maxLag > limit {
		t.Errorf("committed lag reached %.0f records while a shop was paused, want at most %.0f (tracked records bounded)", maxLag, limit)
	}
	// A paused order pins its partition until the span bound parks it (MAX_PARTITION_SPAN records,
	// about 4.5 s of this partition's traffic), so commits move in steps; they must not stop.
	if longest > 20 {
		t.Errorf("commits did not move for %d s while a shop was paused", longest)
	}
	if n := len(h.sb.Orders(otherShop.AppKey)); n == 0 {
		t.Error("the healthy shop got nothing while the other was paused")
	}

	// The shop comes back; traffic stops; everything settles.
	h.sb.ClearFaults()
	stopGen()
	<-genDone
	mu.Lock()
	total := int64(produced)
	ids := append([]string(nil), paused...)
	mu.Unlock()
	eventually(t, 120*time.Second, "every offset committed", func() bool { return h.committed() == total })

	dlq := h.read("TOPIC_STATUS_DLQ", 5*time.Second, func([]kafka.Message) bool { return false })
	parked := map[string]kafka.Message{}
	for _, m := range dlq {
		if r := kafkaio.Header(m, schemas.HeaderDLQReason); r != writeback.DLQParked {
			t.Fatalf("dlq record with reason %q, want only %s", r, writeback.DLQParked)
		}
		parked[strings.TrimPrefix(string(m.Key), "dianwoda:DD")] = m
	}
	missing := 0
	for _, id := range ids {
		if _, ok := h.sb.Order(appKey, id); !ok && parked[id].Value == nil {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d paused orders neither reached Dangdang nor the DLQ", missing, len(ids))
	}
	t.Logf("%d paused orders: %d reached Dangdang after the resume, %d parked in the DLQ", len(ids), len(ids)-len(parked), len(parked))

	// Re-drive the parked ones as the replay tool does (the record unchanged, dlq_* headers off).
	var again []kafka.Message
	for _, m := range parked {
		var hs []kafka.Header
		for _, x := range m.Headers {
			if !strings.HasPrefix(x.Key, "dlq_") {
				hs = append(hs, x)
			}
		}
		again = append(again, kafka.Message{Key: m.Key, Value: m.Value, Headers: hs})
	}
	if len(again) > 0 {
		h.write(again)
	}
	eventually(t, 120*time.Second, "every paused order at Dangdang", func() bool {
		for _, id := range ids {
			if _, ok := h.sb.Order(appKey, id); !ok {
				return false
			}
		}
		return true
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
