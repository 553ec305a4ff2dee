package e2e_test

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/e2e/chaos"
)

// benchRow is one rate of the system benchmark, as e2e/bench/system.sh tabulates it.
type benchRow struct {
	Rate          float64 `json:"rate"`
	Seconds       float64 `json:"seconds"`
	Acked         int64   `json:"acked"`
	AckedPerSec   float64 `json:"acked_per_sec"`
	Refused       int64   `json:"refused"`
	Transitions   int     `json:"transitions"`
	Lost          int     `json:"lost"`
	Duplicated    int     `json:"duplicated"`
	EventP50MS    float64 `json:"event_p50_ms"`
	EventP99MS    float64 `json:"event_p99_ms"`
	EventMaxMS    float64 `json:"event_max_ms"`
	DDOrders      int     `json:"dd_orders"`
	DDP50MS       float64 `json:"dd_p50_ms"`
	DDP99MS       float64 `json:"dd_p99_ms"`
	DDCalls       int     `json:"dd_calls"`
	SettleSeconds float64 `json:"settle_seconds"`
	ReplyP50MS    float64 `json:"reply_p50_ms"`
	ReplyP99MS    float64 `json:"reply_p99_ms"`
}

// TestSystemBench is the system benchmark (`make bench` via e2e/bench/system.sh): the whole
// pipeline as processes on the real broker, driven at each of BENCH_RATES callbacks/s for
// BENCH_DURATION with well-behaved traffic (every order walks its flow; no faults, no forged
// or poison records), measuring the acknowledged rate and the delay from the success reply to
// the unified event and to Dangdang's acceptance. It writes one JSON line per rate to
// BENCH_OUT. Skipped unless BENCH_SYSTEM=1: it is a measurement, not a test.
func TestSystemBench(t *testing.T) {
	if os.Getenv("BENCH_SYSTEM") != "1" {
		t.Skip("BENCH_SYSTEM=1 runs the system benchmark (make bench)")
	}
	d := envDuration("BENCH_DURATION", 20*time.Second)
	var out *os.File
	if p := os.Getenv("BENCH_OUT"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		out = f
	}
	for _, rs := range strings.Fields(envString("BENCH_RATES", "250 500 1000 2000")) {
		rate, err := strconv.ParseFloat(rs, 64)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(rs, func(t *testing.T) {
			p := startStack(t, stackOpts{partitions: 12, quiet: true})
			col := chaos.StartCollector(p.kafka, chaos.Topics{Raw: p.topics.Raw, RawDLQ: p.topics.RawDLQ, Status: p.topics.Status,
				Results: p.topics.Results, StatusDLQ: p.topics.StatusDLQ}, p.partitions)
			defer col.Stop()
			signer := chaos.Signer{DianwodaSecret: testDianwodaSecret, ElemeAppID: testElemeAppID, ElemeSecret: testElemeSecret}
			mix := chaos.Mix{DDShare: 0.3}
			ctx := context.Background()
			// Warm up: the consumer groups join and the connections open before the measurement.
			warm := chaos.Drive(ctx, chaos.Config{IngressURL: p.ingressURL, Rate: 50, Duration: 2 * time.Second, Workers: 4, Mix: mix, Signer: signer})
			if ok, why := chaos.Settle(ctx, warm, col, 500*time.Millisecond, 60*time.Second); !ok {
				t.Fatalf("warm-up did not settle: %s", why)
			}
			col.Reset()
			l := chaos.Drive(ctx, chaos.Config{IngressURL: p.ingressURL, Rate: rate, Duration: d, Workers: 64, Mix: mix, Signer: signer})
			loadEnd := time.Now()
			ok, why := chaos.Settle(ctx, l, col, time.Second, 120*time.Second)
			settle := time.Since(loadEnd) - time.Second
			if !ok {
				t.Errorf("did not settle: %s", why)
			}
			r := chaos.Check(ctx, "bench", l, col, chaos.Sandbox{URL: p.sandboxURL})
			t.Log(r.String())
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			row := benchRow{Rate: rate, Seconds: l.Finished.Sub(l.Started).Seconds(), Acked: l.Acked.Load(), Refused: l.Refused.Load(),
				Transitions: r.Expected, Lost: r.Lost, Duplicated: r.Duplicated,
				EventP50MS: ms(r.P50), EventP99MS: ms(r.P99), EventMaxMS: ms(r.MaxDelay),
				DDOrders: r.DDOrders, DDP50MS: ms(r.DDP50), DDP99MS: ms(r.DDP99), DDCalls: r.DDCalls, SettleSeconds: settle.Seconds()}
			// The sustained rate counts what was acknowledged inside the paced window, not the
			// unpaced finish of the last orders' flows.
			row.AckedPerSec = float64(l.AckedBetween(l.Started, l.Started.Add(d))) / d.Seconds()
			rp50, rp99 := l.ReplyQuantiles()
			row.ReplyP50MS, row.ReplyP99MS = ms(rp50), ms(rp99)
			if r.Lost != 0 || r.Duplicated != 0 {
				t.Errorf("lost %d duplicated %d", r.Lost, r.Duplicated)
			}
			if out != nil {
				b, _ := json.Marshal(row)
				_, _ = out.Write(append(b, '\n'))
			}
		})
	}
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
