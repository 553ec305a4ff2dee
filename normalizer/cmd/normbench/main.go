// Command normbench measures one normalizer instance end to end: it pre-fills a fresh raw topic
// with mixed, realistic callbacks (Dianwoda and Eleme orders with platform retries, re-sends under
// new ids, late arrivals, shop messages and a little poison), then runs the normalizer's consumer
// loop (the same code as the service, real Kafka, real Redis) until every record is committed,
// and reports events/s, Redis round trips per 1,000 records, peak memory and the Redis bytes held
// per order. It uses its own topics, group and Redis key prefix and removes them afterwards.
//
//	KAFKA_BROKERS=127.0.0.1:39092 REDIS_ADDR=127.0.0.1:36379 go run ./cmd/normbench -records 1000000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/orderpipe/pipeline/normalizer/internal/consumer"
	"github.com/orderpipe/pipeline/normalizer/internal/orderstate"
	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/redisio"
	"github.com/orderpipe/pipeline/schemas"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "normbench:", err)
		os.Exit(1)
	}
}

type opts struct {
	records    int
	partitions int
	batch      int
	keep       bool
	seed       uint64
}

func run(ctx context.Context) error {
	var o opts
	flag.IntVar(&o.records, "records", 100_000, "raw records to pre-fill and normalize")
	flag.IntVar(&o.partitions, "partitions", 12, "partitions of the bench topics")
	flag.IntVar(&o.batch, "batch", 2000, "BATCH_MAX_RECORDS of the consumer")
	flag.BoolVar(&o.keep, "keep", false, "keep the topics and Redis keys afterwards")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed of the generator")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the normalizing phase here")
	memprofile := flag.String("memprofile", "", "write an allocation profile of the normalizing phase here")
	var watch pidList
	flag.Var(&watch, "watch", "name=pid of another process (the broker, Redis) whose CPU time during the normalizing phase to report; repeatable")
	flag.Parse()
	// The same variables as the service: a secured Kafka or a Sentinel/Cluster Redis works too.
	l := envconfig.New(os.Getenv)
	conn := kafkaio.LoadConn(l)
	redisCfg := redisio.Load(l, "127.0.0.1:6379")
	if err := l.Err(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}

	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	raw, status, dlq := "normbench.raw."+suffix, "normbench.status."+suffix, "normbench.dlq."+suffix
	prefix := "normbench:" + suffix + ":"
	err := conn.EnsureTopics(ctx,
		kafkaio.TopicSpec{Name: raw, Partitions: o.partitions}, kafkaio.TopicSpec{Name: status, Partitions: o.partitions},
		kafkaio.TopicSpec{Name: dlq, Partitions: o.partitions})
	if err != nil {
		return err
	}
	rdb, err := redisCfg.NewClient()
	if err != nil {
		return err
	}
	defer rdb.Close()
	if !o.keep {
		defer cleanup(conn, rdb, prefix, raw, status, dlq)
	}

	// 1. Pre-fill.
	t0 := time.Now()
	gen := newGenerator(o.seed)
	// The Producer retries a partition whose leader is not ready yet (a topic created a moment
	// ago on a busy machine) without reordering it.
	w := conn.NewProducer(kafkaio.ProducerConfig{Topic: raw, BatchBytes: maxBatchBytes})
	// Chunk after chunk, in order: concurrent writes could reorder one order's records across
	// chunks, which the guard would then (rightly) mark stale.
	err = gen.generate(o.records, 20_000, func(chunk []kafka.Message) error { return w.WriteMessages(ctx, chunk...) })
	_ = w.Close()
	if err != nil {
		return fmt.Errorf("pre-fill: %.300s", err)
	}
	fmt.Printf("pre-filled %d records (%d orders, %.0f bytes/record avg) in %s\n", o.records, gen.orders, float64(gen.bytes)/float64(o.records), time.Since(t0).Round(time.Millisecond))
	fmt.Printf("expected: %d distinct events (%d stale), %d duplicates, %d not-order, %d poison\n", gen.events, gen.stale, gen.dups, gen.skips, gen.poison)
	debug.FreeOSMemory() // so that the RSS high-water mark below measures the normalizing phase

	usedBefore, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}

	// 2. Normalize, as the service does.
	reg := prometheus.NewRegistry()
	m := consumer.NewMetrics(reg)
	store := orderstate.New(rdb, prefix, 168*time.Hour)
	reader := conn.NewFetchReader(kafkaio.ReaderConfig{GroupID: "normbench." + suffix, Topic: raw})
	// The writers as the service builds them (run.go).
	statusW := conn.NewProducer(kafkaio.ProducerConfig{Topic: status, BatchBytes: maxBatchBytes})
	dlqW := conn.NewProducer(kafkaio.ProducerConfig{Topic: dlq})
	defer statusW.Close()
	defer dlqW.Close()
	cons, err := consumer.New(consumer.Config{Reader: reader, Status: statusW, DLQ: dlqW, Store: store, Metrics: m, Log: zap.NewNop(),
		MaxBatch: o.batch, MaxEventBytes: maxBatchBytes, MaxDeadLetterBytes: kafkaio.DefaultBatchBytes})
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memprofile != "" {
		// Allocations are counted from the start of the process: the pre-fill's are in FILE.base,
		// to subtract with go tool pprof -base FILE.base.
		writeHeapProfile(*memprofile + ".base")
		defer writeHeapProfile(*memprofile)
	}
	resetPeakRSS()
	watchBefore := watch.cpu()
	cpuBefore := cpuTime()
	var peakHeap atomic.Uint64
	cctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(cctx)
	start := time.Now()
	g.Go(func() error { return cons.Run(gctx) })
	g.Go(func() error { samplePeak(gctx, &peakHeap); return nil })
	var firstAt time.Time
	for {
		c := testutil.ToFloat64(m.Committed)
		if c > 0 && firstAt.IsZero() {
			firstAt = time.Now()
		}
		if int(c) >= o.records {
			break
		}
		if ctx.Err() != nil {
			cancel()
			_ = g.Wait()
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpuUsed := cpuTime() - cpuBefore
	watchUsed := watch.cpu()
	cancel()
	_ = g.Wait()
	_ = reader.Close()

	emitted := sumVec(m.Emitted)
	dedup := sumVec(m.Deduplicated)
	guarded := sumVec(m.Guarded)
	dead := sumVec(m.DeadLettered)
	trips := testutil.ToFloat64(m.RedisTrips)
	fmt.Printf("normalized %d records in %s (first commit after %s)\n", o.records, elapsed.Round(time.Millisecond), firstAt.Sub(start).Round(time.Millisecond))
	fmt.Printf("events emitted %.0f (%.0f stale), deduplicated %.0f, dead-lettered %.0f\n", emitted, guarded, dedup, dead)
	fmt.Printf("throughput: %.0f events/s, %.0f records/s\n", emitted/elapsed.Seconds(), float64(o.records)/elapsed.Seconds())
	fmt.Printf("cpu: %.2f s user+sys for the normalizer process = %.1f µs per record; on 2 free cores that is at most %.0f records/s\n",
		cpuUsed.Seconds(), float64(cpuUsed.Microseconds())/float64(o.records), 2*float64(o.records)/cpuUsed.Seconds())
	for i, w := range watch {
		used := watchUsed[i] - watchBefore[i]
		fmt.Printf("cpu of %s (pid %d) meanwhile: %.2f s = %.1f µs per record\n", w.name, w.pid, used.Seconds(), float64(used.Microseconds())/float64(o.records))
	}
	fmt.Printf("redis round trips: %.0f in total, %.2f per 1,000 records\n", trips, trips*1000/float64(o.records))
	fmt.Printf("peak memory: RSS high-water %.1f MiB, Go heap peak %.1f MiB\n", float64(peakRSS())/(1<<20), float64(peakHeap.Load())/(1<<20))
	if int(emitted) != gen.events || int(dedup) != gen.dups || int(dead) != gen.poison || int(guarded) != gen.stale {
		fmt.Printf("MISMATCH: want %d events, %d stale, %d duplicates, %d dead letters\n", gen.events, gen.stale, gen.dups, gen.poison)
	}

	// 3. Redis bytes per order.
	usedAfter, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	avgKey, sampled, fields, err := sampleKeys(ctx, rdb, prefix)
	if err != nil {
		return err
	}
	fmt.Printf("redis: used_memory delta %.0f bytes for %d orders = %.0f bytes/order (shared Redis: other work adds noise)\n",
		float64(usedAfter-usedBefore), gen.orders, float64(usedAfter-usedBefore)/float64(gen.orders))
	fmt.Printf("redis: MEMORY USAGE over %d sampled order keys: %.0f bytes/order, %.1f fields/order\n", sampled, avgKey, fields)
	return nil
}

// maxBatchBytes keeps a produce batch under the broker's default message.max.bytes (1 MiB).
const maxBatchBytes = 900 << 10

func sumVec(v *prometheus.CounterVec) float64 {
	ch := make(chan prometheus.Metric, 64)
	go func() { v.Collect(ch); close(ch) }()
	var s float64
	for m := range ch {
		s += testutil.ToFloat64(m.(prometheus.Collector))
	}
	return s
}

func usedMemory(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("used_memory not in INFO")
}

func sampleKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) (avg float64, n int, fields float64, err error) {
	var total, nf int64
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) && n < 2000 {
		u, err := rdb.MemoryUsage(ctx, iter.Val(), 0).Result()
		if err != nil {
			return 0, 0, 0, err
		}
		f, _ := rdb.HLen(ctx, iter.Val()).Result()
		total += u
		nf += f
		n++
	}
	if n == 0 {
		return 0, 0, 0, iter.Err()
	}
	return float64(total) / float64(n), n, float64(nf) / float64(n), iter.Err()
}

func cleanup(conn kafkaio.Conn, rdb redis.UniversalClient, prefix string, topics ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 5000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 5000 {
			rdb.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		rdb.Unlink(ctx, keys...)
	}
	client := conn.NewClient(30 * time.Second)
	defer client.Close()
	if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics}); err != nil {
		fmt.Fprintln(os.Stderr, "delete topics:", err)
	}
}

// pidList is the -watch flag: other processes whose CPU time is reported.
type pidList []struct {
	name string
	pid  int
}

func (l *pidList) String() string { return fmt.Sprint(*l) }

func (l *pidList) Set(v string) error {
	name, p, ok := strings.Cut(v, "=")
	pid, err := strconv.Atoi(p)
	if !ok || err != nil || pid <= 0 {
		return fmt.Errorf("want name=pid, got %q", v)
	}
	*l = append(*l, struct {
		name string
		pid  int
	}{name, pid})
	return nil
}

// cpu returns the user+system CPU time of each process so far (zero when it cannot be read).
func (l pidList) cpu() []time.Duration {
	out := make([]time.Duration, len(l))
	for i, w := range l {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", w.pid))
		if err != nil {
			continue
		}
		// The fields after the command (which may hold spaces) start after its closing paren.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[i] = time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
	}
	return out
}

func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "memprofile:", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		fmt.Fprintln(os.Stderr, "memprofile:", err)
	}
}

// cpuTime is the user+system CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS resets the kernel's RSS high-water mark of this process (Linux clear_refs 5), so
// that peakRSS measures the normalizing phase, not the pre-fill.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func samplePeak(ctx context.Context, peak *atomic.Uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(s)
		if v := s[0].Value.Uint64(); v > peak.Load() {
			peak.Store(v)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// generator makes realistic callbacks and counts what the normalizer must make of them.
type generator struct {
	rnd                                        *rand.Rand
	orders, events, stale, dups, skips, poison int
	bytes, seq                                 int
}

func newGenerator(seed uint64) *generator {
	return &generator{rnd: rand.New(rand.NewPCG(seed, seed^0x9e37))}
}

// cb is one callback and what it must become.
type cb struct {
	key, platform, orderID, body string
	event, stale, dup, skip      bool
	poison                       bool
}

// generate makes n records and hands them to flush in chunks, in order.
func (g *generator) generate(n, chunk int, flush func([]kafka.Message) error) error {
	out := make([]kafka.Message, 0, chunk)
	written := 0
	base := int64(1_763_800_000_000)
	for written+len(out) < n {
		// 200 orders in flight at once; their callbacks interleave as they would in production.
		lanes := make([][]cb, 200)
		for i := range lanes {
			base += 997
			if g.rnd.IntN(2) == 0 {
				lanes[i] = g.dianwodaOrder(base)
			} else {
				lanes[i] = g.elemeOrder(base)
			}
			g.orders++
		}
		for more := true; more && written+len(out) < n; {
			more = false
			for i := range lanes {
				if len(lanes[i]) == 0 || written+len(out) >= n {
					continue
				}
				more = true
				out = append(out, g.record(lanes[i][0]))
				lanes[i] = lanes[i][1:]
				if len(out) == chunk {
					if err := flush(out); err != nil {
						return err
					}
					written += len(out)
					out = make([]kafka.Message, 0, chunk)
				}
			}
		}
	}
	if len(out) > 0 {
		return flush(out)
	}
	return nil
}

func (g *generator) record(c cb) kafka.Message {
	switch {
	case c.poison:
		g.poison++
	case c.skip:
		g.skips++
	case c.dup:
		g.dups++
	case c.event:
		g.events++
		if c.stale {
			g.stale++
		}
	}
	g.seq++
	var v []byte
	if c.poison {
		v = []byte("\x00garbage that is not an envelope " + strconv.Itoa(g.seq))
	} else {
		env := schemas.RawEnvelope{Version: 1, IngressID: "01JDQ4Y7RZ3N8X2V5K9M" + strconv.Itoa(1_000_000+g.seq), Platform: c.platform, OrderID: c.orderID,
			ReceivedAt: schemas.UnixMilli(1_764_000_000_000 + int64(g.seq)), Body: []byte(c.body),
			Headers: map[string]string{"Content-Type": "application/json", "User-Agent": "Apache-HttpClient/4.5.13 (Java/1.8.0_292)"}}
		v, _ = json.Marshal(env)
	}
	g.bytes += len(v)
	return kafka.Message{Key: []byte(c.key), Value: v}
}

// withRetries appends each callback, and sometimes a platform retry (same message id) or a
// re-send under a new id, which must both collapse into the first.
func (g *generator) withRetries(evs []cb, resend func(cb) cb) []cb {
	var out []cb
	for _, e := range evs {
		out = append(out, e)
		if e.event && g.rnd.IntN(10) == 0 {
			d := e
			d.event, d.dup = false, true
			out = append(out, d)
		}
		if e.event && g.rnd.IntN(33) == 0 {
			d := resend(e)
			d.event, d.dup = false, true
			out = append(out, d)
		}
	}
	return out
}

func (g *generator) dianwodaOrder(base int64) []cb {
	id := "FTP" + strconv.FormatInt(base, 10)
	key := schemas.Key(schemas.PlatformDianwoda, id)
	msg := func(status, code, sub, detail string, at int64, msgID string, attempt int) string {
		return fmt.Sprintf(`{"content":{"order_original_id":%q,"order_status":%q,"action_code":%q,"action_sub_code":%q,"action_detail":%q,"rider_code":"10088","rider_name":"张德顺","rider_mobile":"13600000000","time_status_update":%d},"deliver_times":%d,"msg_id":%q,"pub_time":%d}`,
			id, status, code, sub, detail, at, attempt, msgID, at+150)
	}
	type step struct {
		status, code, sub, detail string
		at                        int64
		stale                     bool
	}
	steps := []step{{"dispatched", "rider_dispatch", "", "骑手接单", base + 10_000, false}, {"arrived", "rider_arrive", "", "骑手到店", base + 20_000, false}}
	if g.rnd.IntN(20) == 0 {
		steps = append(steps, step{"created", "rider_switch", "", "骑手转单", base + 25_000, false}, step{"dispatched", "rider_dispatch", "", "骑手接单", base + 27_000, false})
	}
	steps = append(steps, step{"obtained", "rider_obtain", "", "骑手离店", base + 30_000, false})
	if g.rnd.IntN(20) == 0 { // a late, older transition: stale
		steps = append(steps, step{"arrived", "rider_arrive", "", "骑手到店", base + 15_000, true})
	}
	if g.rnd.IntN(10) == 0 {
		steps = append(steps, step{"abnormal", "customer_sign_abnormal", "customer_not_connectable", "签收异常 - 联系不到客户", base + 40_000, false})
	} else {
		steps = append(steps, step{"completed", "customer_sign", "", "货品送达", base + 40_000, false})
	}
	var evs []cb
	for i, s := range steps {
		msgID := fmt.Sprintf("%016x%016x", base, i)
		evs = append(evs, cb{key: key, platform: schemas.PlatformDianwoda, orderID: id, event: true, stale: s.stale,
			body: msg(s.status, s.code, s.sub, s.detail, s.at, msgID, 1)})
		_ = i
	}
	out := g.withRetries(evs, func(c cb) cb {
		c.body = strings.Replace(c.body, `"msg_id":"`, `"msg_id":"r`, 1)
		return c
	})
	return g.extras(out, key, id, schemas.PlatformDianwoda)
}

func (g *generator) elemeOrder(base int64) []cb {
	id := strconv.FormatInt(1_000_275_004_859_336_560+base, 10) // beyond 2^53, as Eleme's are
	key := schemas.Key(schemas.PlatformEleme, id)
	sec := base / 1000
	push := func(typ int, reqID string, message string, ts int64) string {
		m, _ := json.Marshal(message)
		return fmt.Sprintf(`{"appId":62933118,"requestId":%q,"type":%d,"message":%s,"shopId":968861,"timestamp":%d,"signature":"A6A1E1FD9D880E184EEC8BFF19DE45D6","userId":62864532}`, reqID, typ, m, ts)
	}
	status := func(state string, at int64, role int) string {
		return fmt.Sprintf(`{"orderId":"%s","state":"%s","shopId":968861,"updateTime":%d,"role":%d}`, id, state, at, role)
	}
	delivery := func(state, sub string, atMS int64) string {
		return fmt.Sprintf(`{"orderId":"%s","shopId":968861,"state":"%s","subState":"%s","name":"李骑手","phone":"13900001111","updateAt":%d}`, id, state, sub, atMS)
	}
	type step struct {
		typ   int
		msg   string
		ts    int64
		stale bool
	}
	activeAt := time.UnixMilli(base).In(time.FixedZone("UTC+8", 8*3600)).Format("2006-01-02T15:04:05")
	steps := []step{
		{217, fmt.Sprintf(`{"id":"%s","orderId":"%s","shopId":968861,"status":"unprocessed","activeAt":"%s","createdAt":"%s","totalPrice":25.5,"description":"少辣"}`, id, id, activeAt, activeAt), base, false},
		{12, status("valid", sec+60, 3), base + 60_000, false},
		{52, delivery("tobeAssignedCourier", "noSubstate", base+120_000), base + 120_000, false},
		{53, delivery("tobeFetched", "noSubstate", base+180_000), base + 180_000, false},
		{54, delivery("arrived", "noSubstate", base+240_000), base + 240_000, false},
		{55, delivery("delivering", "noSubstate", base+300_000), base + 300_000, false},
	}
	if g.rnd.IntN(20) == 0 { // "arrived" reported again later with an older time: stale
		steps = append(steps, step{54, delivery("arrived", "noSubstate", base+250_000), base + 310_000, true})
	}
	steps = append(steps, step{56, delivery("completed", "noSubstate", base+900_000), base + 900_000, false},
		step{18, status("settled", sec+3600, 9), base + 3_600_000, false})
	if g.rnd.IntN(10) == 0 {
		refund := func(rs string, at int64) string {
			return fmt.Sprintf(`{"orderId":"%s","refundStatus":"%s","reason":"用户申请退单","shopId":968861,"updateTime":%d,"refundType":"normal","totalPrice":16.03,"goodsList":[{"name":"黑椒牛柳意大利面[重辣]","quantity":1,"price":5.0},{"name":"冰糖雪梨","quantity":1,"price":0.03}]}`, id, rs, at)
		}
		steps = append(steps, step{30, refund("applied", sec+4000), base + 4_000_000, false}, step{33, refund("successful", sec+4600), base + 4_600_000, false})
	}
	var evs []cb
	for i, s := range steps {
		evs = append(evs, cb{key: key, platform: schemas.PlatformEleme, orderID: id, event: true, stale: s.stale,
			body: push(s.typ, strconv.FormatInt(base, 10)+strconv.Itoa(i), s.msg, s.ts)})
	}
	out := g.withRetries(evs, func(c cb) cb {
		c.body = strings.Replace(c.body, `"requestId":"`, `"requestId":"r`, 1)
		return c
	})
	return g.extras(out, key, id, schemas.PlatformEleme)
}

// extras adds, rarely, a shop message (no order: counted and skipped) and a poison record.
func (g *generator) extras(out []cb, key, id, platform string) []cb {
	if g.rnd.IntN(100) == 0 {
		out = append(out, cb{key: "eleme:shop:968861", platform: schemas.PlatformEleme, skip: true,
			body: `{"appId":62933118,"requestId":"s1","type":91,"message":"{\"shopId\":968861,\"status\":\"open\"}","shopId":968861,"timestamp":1,"signature":"X","userId":1}`})
	}
	if g.rnd.IntN(2000) == 0 {
		out = append(out, cb{key: key, platform: platform, orderID: id, poison: true})
	}
	return out
}
