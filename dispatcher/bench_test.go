package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/dispatcher/internal/ddsandbox"
	"github.com/orderpipe/pipeline/dispatcher/internal/writeback"
	"github.com/orderpipe/pipeline/schemas"
)

// BenchmarkDangdangThroughput drives the whole dispatcher (real Kafka, Redis, the sandbox over
// HTTP) with delivered events for 10 shops at BENCH_RATE events/s (default 5,000) for
// BENCH_SECONDS (default 10), each a new order, and reports orders per call, calls per second
// and the delay from the event's occurred_at to Dangdang's acceptance (p50, p99).
//
//	KAFKA_BROKERS=... REDIS_ADDR=... go test -run='^$' -bench=DangdangThroughput -benchtime=1x .
func BenchmarkDangdangThroughput(b *testing.B) {
	rate := envInt("BENCH_RATE", 5000)
	seconds := envInt("BENCH_SECONDS", 10)
	const shops = 10
	var shopsYAML, routesYAML strings.Builder
	shopsYAML.WriteString("shops:\n")
	routesYAML.WriteString("routes:\n  - name: delivery\n    match: {kind: delivery}\n    to: {topic: \"${TOPIC_DELIVERY}\"}\n")
	for i := range shops {
		fmt.Fprintf(&shopsYAML, "  shop%d: {app_key: '%d', app_secret: s%d, session: x, rate_per_second: 50, burst: 10, concurrency: 2}\n", i, 3100000000+i, i)
		fmt.Fprintf(&routesYAML, "  - name: dd%d\n    match: {status: [delivered, delivery_failed], order_id: '^S%d-(?P<order>[0-9]+)$'}\n    to: {dangdang: {shop: shop%d}}\n", i, i, i)
	}
	for range b.N {
		h := newHarness(b, map[string]string{
			"DANGDANG_SHOPS":        shopsYAML.String(),
			"ROUTES_FILE":           writeFile(b, "routes.yaml", routesYAML.String()),
			"DANGDANG_BATCH_WINDOW": "1s",
			"LOG_LEVEL":             "error",
		})
		for i := range shops {
			h.sb.AddShop(ddsandbox.Shop{AppKey: strconv.Itoa(3100000000 + i), Secret: "s" + strconv.Itoa(i)})
		}
		stop := h.start()
		total := rate * seconds
		occurred := make(map[string]time.Time, total)
		// Let the consumer join its group before the clock starts.
		h.produce(event("dianwoda", "warmup", schemas.StatusPickedUp, time.Now()))
		time.Sleep(3 * time.Second)

		b.ResetTimer()
		cpu0 := cpuTime()
		start := time.Now()
		const tick = 20 * time.Millisecond
		perTick := rate * int(tick) / int(time.Second)
		n := 0
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		var produceErr atomic.Value
		for n < total {
			next := start.Add(time.Duration(n/perTick+1) * tick)
			now := time.Now()
			msgs := make([]kafka.Message, 0, perTick)
			for range perTick {
				id := fmt.Sprintf("S%d-%d", n%shops, 900000000+n)
				ev := event("dianwoda", id, schemas.StatusDelivered, now)
				v, _ := json.Marshal(ev)
				msgs = append(msgs, kafka.Message{Key: []byte(schemas.Key(ev.Platform, ev.OrderID)), Value: v})
				occurred[strings.SplitN(id, "-", 2)[1]] = ev.OccurredAt.Time
				n++
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := h.in.WriteMessages(context.Background(), msgs...); err != nil {
					produceErr.Store(err)
				}
			})
			time.Sleep(time.Until(next))
		}
		wg.Wait()
		if err := produceErr.Load(); err != nil {
			b.Fatal(err)
		}
		produced := time.Since(start)
		msgs := h.read("TOPIC_DANGDANG_RESULTS", 120*time.Second, func(m []kafka.Message) bool { return len(m) >= total })
		elapsed := time.Since(start)
		cpu := cpuTime() - cpu0
		b.StopTimer()
		_ = stop()

		res := results(b, msgs)
		var delays []time.Duration
		for _, r := range res {
			if r.Outcome == writeback.OutcomeAccepted {
				delays = append(delays, r.At.Sub(occurred[r.DangdangOrderID]))
			}
		}
		sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
		st := h.sb.Stats()
		calls := st.CallsByOutcome["ok"]
		if len(delays) != total || calls == 0 {
			b.Fatalf("accepted %d of %d orders in %d calls", len(delays), total, calls)
		}
		q := func(p float64) float64 { return float64(delays[int(p*float64(len(delays)-1))].Milliseconds()) }
		b.ReportMetric(float64(total)/produced.Seconds(), "events/s")
		b.ReportMetric(float64(st.OrdersAccepted)/float64(calls), "orders/call")
		b.ReportMetric(float64(calls)/elapsed.Seconds(), "calls/s")
		b.ReportMetric(q(0.50), "p50-delay-ms")
		b.ReportMetric(q(0.99), "p99-delay-ms")
		b.ReportMetric(float64(delays[len(delays)-1].Milliseconds()), "max-delay-ms")
		// CPU of this process (dispatcher, sandbox, generator, result reader; not Kafka or Redis).
		b.ReportMetric(float64(cpu.Microseconds())/float64(total), "cpu-µs/event")
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
