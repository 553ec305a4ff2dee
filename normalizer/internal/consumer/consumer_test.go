package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/orderpipe/pipeline/normalizer/internal/normalize"
	"github.com/orderpipe/pipeline/normalizer/internal/orderstate"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// kafka-go and go-redis keep connections, their readers and reapers a moment after Close
		// (longer on a loaded machine). The consumer's own goroutines are checked directly: Run
		// returns only after they ended, and every test waits for Run to return.
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*connPool).discover"),
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*conn).run"),
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*Reader).run"),
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*reader).run"),
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*Reader).start.func1"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
	)
}

// env is one test's private topics, group and Redis prefix on the shared Kafka and Redis.
type env struct {
	t                *testing.T
	brokers          []string
	raw, status, dlq string
	group            string
	rdb              redis.UniversalClient
	store            *orderstate.Store
	producer         *kafka.Writer
	partitions       int
}

func newEnv(t *testing.T, partitions int) *env {
	t.Helper()
	brokers := testenv.Kafka(t)
	addr := testenv.Redis(t)
	e := &env{t: t, brokers: brokers, partitions: partitions,
		raw: testenv.Name(t, "raw"), status: testenv.Name(t, "status"), dlq: testenv.Name(t, "dlq"), group: testenv.Name(t, "g")}
	createTopics(t, brokers, partitions, e.raw, e.status, e.dlq)
	waitLeaders(t, brokers, e.raw, e.status, e.dlq)
	e.rdb = redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{addr}})
	e.store = orderstate.New(e.rdb, testenv.Name(t, "op")+":", time.Hour)
	e.producer = kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: brokers, Topic: e.raw, WriteTimeout: time.Minute})
	t.Cleanup(func() {
		e.producer.Close()
		e.rdb.Close()
	})
	return e
}

// waitLeaders waits until every partition of the topics has a leader that answers (a fresh
// topic refuses writes with "Not Leader For Partition" for a moment).
func waitLeaders(t *testing.T, brokers []string, topics ...string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, topic := range topics {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := kafkaio.GroupOffsets(ctx, brokers, "leader-probe", topic)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("topic %s has no leader: %v", topic, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// createTopics is testenv.Topics with retries: the shared broker is sometimes briefly
// unavailable ("Broker Not Available") while other work loads it.
func createTopics(t *testing.T, brokers []string, partitions int, names ...string) {
	t.Helper()
	specs := make([]kafkaio.TopicSpec, len(names))
	for i, n := range names {
		specs[i] = kafkaio.TopicSpec{Name: n, Partitions: partitions}
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := kafkaio.EnsureTopics(ctx, brokers, specs...)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("create topics: %v", err)
		}
		time.Sleep(time.Second)
	}
}

// t0 is the origin of the tests' platform times (ms); records are received an hour later, so
// every test time lies within the plausible window around received_at.
const t0 = 1_700_000_000_000

// record is a raw envelope value the ingress would write.
func record(t testing.TB, platform, orderID string, body string) kafka.Message {
	v, err := json.Marshal(schemas.RawEnvelope{Version: 1, IngressID: "test", Platform: platform, OrderID: orderID,
		ReceivedAt: schemas.UnixMilli(t0 + 3_600_000), Body: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(schemas.Key(platform, orderID)), Value: v}
}

func dianwoda(t testing.TB, orderID, msgID, status, code string, at int64) kafka.Message {
	body := fmt.Sprintf(`{"content":{"order_original_id":%q,"order_status":%q,"action_code":%q,"rider_code":"1","rider_name":"r","rider_mobile":"13600000000","time_status_update":%d},"deliver_times":1,"msg_id":%q,"pub_time":%d}`,
		orderID, status, code, t0+at, msgID, t0+at)
	return record(t, schemas.PlatformDianwoda, orderID, body)
}

func eleme(t testing.TB, orderID, requestID string, typ int, state string, atSec int64) kafka.Message {
	atSec += t0 / 1000
	msg, _ := json.Marshal(fmt.Sprintf(`{"orderId":"%s","state":"%s","shopId":1,"updateTime":%d,"role":3}`, orderID, state, atSec))
	body := fmt.Sprintf(`{"appId":1,"requestId":%q,"type":%d,"message":%s,"shopId":1,"timestamp":%d,"signature":"X","userId":2}`, requestID, typ, msg, atSec*1000+5)
	return record(t, schemas.PlatformEleme, orderID, body)
}

func (e *env) produce(msgs ...kafka.Message) {
	e.t.Helper()
	// Generous: the shared broker can be slow under other work, and a retried write could
	// duplicate records that some tests count exactly.
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := e.producer.WriteMessages(ctx, msgs...); err != nil {
		e.t.Fatalf("produce: %v", err)
	}
}

type running struct {
	cancel  context.CancelFunc
	done    chan error
	metrics *Metrics
	ready   *fakeReady
}

type fakeReady struct {
	mu     sync.Mutex
	states map[string]error
	seen   map[string]bool // ever not ready
}

func (r *fakeReady) Set(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.states == nil {
		r.states, r.seen = map[string]error{}, map[string]bool{}
	}
	r.states[name] = err
	if err != nil {
		r.seen[name] = true
	}
}

func (r *fakeReady) get(name string) (current error, everFailed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.states[name], r.seen[name]
}

type options struct {
	mapFn  func([]byte) (normalize.Result, error)
	status func(w Writer, stop context.CancelFunc) Writer
	store  func(Store) Store
	batch  int
	// dlqBatchBytes is the DLQ writer's BatchBytes (main: the raw topic's limit less 16 KiB).
	dlqBatchBytes int64
	// drain is Config.DrainTimeout; a nanosecond makes a stop a crash (nothing in flight is finished).
	drain time.Duration
}

// start runs a consumer on the test's topics until stopped.
func (e *env) start(o options) *running {
	e.t.Helper()
	reader := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: e.brokers, GroupID: e.group, Topic: e.raw, MaxWait: 100 * time.Millisecond})
	// The writers the service uses (run.go): one produce request for all partitions.
	statusW := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: e.brokers, Topic: e.status})
	dlqW := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: e.brokers, Topic: e.dlq, BatchBytes: int(o.dlqBatchBytes)})
	ctx, cancel := context.WithCancel(context.Background())
	var status Writer = statusW
	if o.status != nil {
		status = o.status(statusW, cancel)
	}
	var store Store = e.store
	if o.store != nil {
		store = o.store(e.store)
	}
	r := &running{done: make(chan error, 1), metrics: NewMetrics(prometheus.NewRegistry()), ready: &fakeReady{}}
	cons, err := New(Config{Reader: reader, Status: status, DLQ: dlqW, Store: store, Metrics: r.metrics, Ready: r.ready,
		Log: zap.NewNop(), Map: o.mapFn, MaxBatch: o.batch, BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		DrainTimeout: o.drain, MaxDeadLetterBytes: o.dlqBatchBytes})
	if err != nil {
		e.t.Fatal(err)
	}
	r.cancel = cancel
	go func() {
		err := cons.Run(ctx)
		reader.Close()
		statusW.Close()
		dlqW.Close()
		r.done <- err
	}()
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("consumer returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consumer did not stop")
	}
}

// waitCommitted waits until the consumer committed n records.
func (r *running) waitCommitted(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second) // tiny batches on a loaded shared broker are slow
	for testutil.ToFloat64(r.metrics.Committed) < float64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("committed %v of %d records", testutil.ToFloat64(r.metrics.Committed), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type out struct {
	raw     []kafka.Header
	key     string
	ev      schemas.StatusEvent
	value   []byte
	headers map[string]string
}

// readAll reads topic until it has at least want records (or a minute passed), then goes on
// until none arrives for quiet, so that extra records would be seen too.
func (e *env) readAll(topic string, want int, quiet time.Duration) []out {
	e.t.Helper()
	r := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: e.brokers, GroupID: testenv.Name(e.t, "reader"), Topic: topic, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var res []out
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		wait := quiet
		if len(res) < want {
			wait = time.Until(deadline)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		m, err := r.FetchMessage(ctx)
		cancel()
		if err != nil {
			break
		}
		o := out{raw: m.Headers, key: string(m.Key), value: m.Value, headers: map[string]string{}}
		for _, h := range m.Headers {
			o.headers[h.Key] = string(h.Value)
		}
		_ = json.Unmarshal(m.Value, &o.ev)
		res = append(res, o)
	}
	return res
}

func TestDuplicatesGiveOneEvent(t *testing.T) {
	e := newEnv(t, 3)
	a := dianwoda(t, "D1", "m1", "dispatched", "rider_dispatch", 1000)
	aRetry := dianwoda(t, "D1", "m1", "dispatched", "rider_dispatch", 1000)
	aRetry.Headers = []kafka.Header{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}}
	aNewID := dianwoda(t, "D1", "m2-resent", "dispatched", "rider_dispatch", 1000)
	b := eleme(t, "100027500485933656", "r1", 12, "valid", 1)
	bNewID := eleme(t, "100027500485933656", "r2", 12, "valid", 1)
	r := e.start(options{})
	defer r.stop(t)
	e.produce(a, aRetry, aNewID, b)
	r.waitCommitted(t, 4)
	e.produce(bNewID) // in a later batch: a duplicate of a confirmed event
	r.waitCommitted(t, 5)
	got := e.readAll(e.status, 2, 2*time.Second)
	if len(got) != 2 {
		t.Fatalf("want 2 events, got %d: %+v", len(got), got)
	}
	if n := testutil.ToFloat64(r.metrics.Deduplicated.WithLabelValues("dianwoda")) + testutil.ToFloat64(r.metrics.Deduplicated.WithLabelValues("eleme")); n != 3 {
		t.Errorf("deduplicated %v, want 3", n)
	}
	for _, o := range got {
		want := map[string]string{
			schemas.HeaderCESpecVersion: "1.0", schemas.HeaderCEID: o.ev.EventID, schemas.HeaderCEType: schemas.CETypeStatus,
			schemas.HeaderCESource: "/orderpipe/normalizer/" + o.ev.Platform, schemas.HeaderCETime: o.ev.OccurredAt.String(),
			schemas.HeaderContentType: "application/json",
		}
		for k, v := range want {
			if o.headers[k] != v {
				t.Errorf("%s header %s = %q, want %q", o.key, k, o.headers[k], v)
			}
		}
		if o.key != schemas.Key(o.ev.Platform, o.ev.OrderID) {
			t.Errorf("key %q for order %s", o.key, o.ev.OrderID)
		}
	}
}

func TestTraceparentIsCopied(t *testing.T) {
	e := newEnv(t, 1)
	m := dianwoda(t, "T1", "m1", "created", "rider_switch", 1000)
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	m.Headers = []kafka.Header{{Key: "traceparent", Value: []byte(tp)}}
	r := e.start(options{})
	defer r.stop(t)
	e.produce(m)
	r.waitCommitted(t, 1)
	got := e.readAll(e.status, 1, time.Second)
	if len(got) != 1 || got[0].headers["traceparent"] != tp {
		t.Fatalf("want one event with traceparent %s, got %+v", tp, got)
	}
}

func TestOutOfOrderEndsInTheRightState(t *testing.T) {
	e := newEnv(t, 3)
	tests := []struct {
		order string
		give  []kafka.Message
		// wantStale per event, in emission order; wantFinal is the last non-stale status.
		wantStale []bool
		wantFinal string
	}{
		{"late non-terminal and older events", []kafka.Message{
			dianwoda(t, "O1", "1", "dispatched", "rider_dispatch", 10_000),
			dianwoda(t, "O1", "2", "obtained", "rider_obtain", 30_000),
			dianwoda(t, "O1", "3", "arrived", "rider_arrive", 20_000), // older: stale
			dianwoda(t, "O1", "4", "completed", "customer_sign", 40_000),
			dianwoda(t, "O1", "5", "obtained", "rider_obtain", 35_000),     // older and non-terminal after terminal
			dianwoda(t, "O1", "6", "dispatched", "rider_dispatch", 50_000), // newer but after terminal
		}, []bool{false, false, true, false, true, true}, schemas.StatusDelivered},
		{"rider_switch goes back and passes", []kafka.Message{
			dianwoda(t, "O2", "1", "dispatched", "rider_dispatch", 10_000),
			dianwoda(t, "O2", "2", "arrived", "rider_arrive", 15_000),
			dianwoda(t, "O2", "3", "created", "rider_switch", 20_000),
			dianwoda(t, "O2", "4", "dispatched", "rider_dispatch", 30_000),
		}, []bool{false, false, false, false}, schemas.StatusRiderAssigned},
		{"kinds are guarded apart", []kafka.Message{
			eleme(t, "7001", "a", 18, "settled", 100), // order completed (terminal)
			eleme(t, "7001", "b", 12, "valid", 90),    // order accepted, late: stale
			record(t, "eleme", "7001", fmt.Sprintf(`{"type":55,"requestId":"c","message":"{\"orderId\":\"7001\",\"state\":\"delivering\",\"updateAt\":%d}"}`, t0+95000)),
		}, []bool{false, true, false}, schemas.StatusPickedUp},
		// Eleme's times are in seconds: a tie is decided by the status's rank within its kind.
		{"tie: placed after accepted in the same second", []kafka.Message{
			eleme(t, "7002", "a", 12, "valid", 100),
			eleme(t, "7002", "b", 10, "unprocessed", 100),
		}, []bool{false, true}, schemas.StatusAccepted},
		{"tie: refund requested after approved in the same second", []kafka.Message{
			eleme(t, "7003", "a", 33, "successful", 100),
			eleme(t, "7003", "b", 30, "applied", 100),
		}, []bool{false, true}, schemas.StatusRefundApproved},
		{"tie: accepted after placed in the same second passes", []kafka.Message{
			eleme(t, "7004", "a", 10, "unprocessed", 100),
			eleme(t, "7004", "b", 12, "valid", 100),
		}, []bool{false, false}, schemas.StatusAccepted},
		{"tie: dianwoda dispatched after arrived in the same ms", []kafka.Message{
			dianwoda(t, "O3", "1", "arrived", "rider_arrive", 10_000),
			dianwoda(t, "O3", "2", "dispatched", "rider_dispatch", 10_000),
			dianwoda(t, "O3", "3", "created", "rider_switch", 10_001), // rider_switch passes by its newer time
		}, []bool{false, true, false}, schemas.StatusAwaitingRider},
	}
	var all []kafka.Message
	for _, tt := range tests {
		all = append(all, tt.give...)
	}
	r := e.start(options{batch: 2}) // small batches: decisions also cross batch boundaries
	defer r.stop(t)
	e.produce(all...)
	r.waitCommitted(t, len(all))
	got := e.readAll(e.status, len(all), 2*time.Second)
	byKey := map[string][]schemas.StatusEvent{}
	for _, o := range got {
		byKey[o.key] = append(byKey[o.key], o.ev)
	}
	for _, tt := range tests {
		t.Run(tt.order, func(t *testing.T) {
			key := string(tt.give[0].Key)
			evs := byKey[key]
			if len(evs) != len(tt.wantStale) {
				t.Fatalf("%s: %d events, want %d", key, len(evs), len(tt.wantStale))
			}
			final := ""
			for i, ev := range evs {
				if ev.Stale != tt.wantStale[i] {
					t.Errorf("event %d (%s at %s): stale %v, want %v", i, ev.Status, ev.OccurredAt, ev.Stale, tt.wantStale[i])
				}
				if !ev.Stale {
					final = ev.Status
				}
			}
			if final != tt.wantFinal {
				t.Errorf("final state %q, want %q", final, tt.wantFinal)
			}
		})
	}
}

func TestPoisonGoesToDLQAndTheNextRecordFlows(t *testing.T) {
	e := newEnv(t, 1)
	good1 := dianwoda(t, "P1", "1", "dispatched", "rider_dispatch", 1000)
	garbage := kafka.Message{Key: []byte("dianwoda:P2"), Value: []byte("\x00not json"), Headers: []kafka.Header{
		{Key: "x-origin", Value: []byte("test")}, {Key: schemas.HeaderDLQReason, Value: []byte("from-an-earlier-dead-lettering")}}}
	v2 := kafka.Message{Key: []byte("eleme:P3"), Value: []byte(`{"version":2,"platform":"eleme","order_id":"P3","received_at":"2026-11-22T08:00:00.000Z","body":""}`)}
	invalid := dianwoda(t, "P4", "1", "", "rider_dispatch", 1000) // no order_status
	panicky := dianwoda(t, "P5", "PANIC", "dispatched", "rider_dispatch", 1000)
	shop := record(t, "eleme", "", `{"type":91,"message":"{}"}`)
	shop.Key = []byte("eleme:shop:968861")
	good2 := dianwoda(t, "P6", "1", "completed", "customer_sign", 2000)
	mapFn := func(v []byte) (normalize.Result, error) {
		if bytes.Contains(v, []byte(`"order_id":"P5"`)) {
			panic("mapper bug")
		}
		return normalize.Record(v)
	}
	r := e.start(options{mapFn: mapFn})
	defer r.stop(t)
	e.produce(good1, garbage, v2, invalid, panicky, shop, good2)
	r.waitCommitted(t, 7)

	events := e.readAll(e.status, 2, 2*time.Second)
	var orders []string
	for _, o := range events {
		orders = append(orders, o.ev.OrderID)
	}
	if strings.Join(orders, ",") != "P1,P6" {
		t.Errorf("events for %v, want P1,P6", orders)
	}
	dead := e.readAll(e.dlq, 4, 2*time.Second)
	wantReasons := []string{schemas.DLQReasonDecode, schemas.DLQReasonUnsupportedVersion, schemas.DLQReasonValidate, schemas.DLQReasonPanic}
	if len(dead) != len(wantReasons) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(wantReasons))
	}
	sources := []kafka.Message{garbage, v2, invalid, panicky}
	for i, d := range dead {
		if d.headers[schemas.HeaderDLQReason] != wantReasons[i] {
			t.Errorf("dead letter %d: reason %q, want %q (error %q)", i, d.headers[schemas.HeaderDLQReason], wantReasons[i], d.headers[schemas.HeaderDLQError])
		}
		if d.key != string(sources[i].Key) || !bytes.Equal(d.value, sources[i].Value) {
			t.Errorf("dead letter %d is not the source record unchanged", i)
		}
		if d.headers[schemas.HeaderDLQTopic] != e.raw || d.headers[schemas.HeaderDLQPartition] != "0" || d.headers[schemas.HeaderDLQOffset] == "" ||
			d.headers[schemas.HeaderDLQService] != "normalizer" || d.headers[schemas.HeaderDLQError] == "" {
			t.Errorf("dead letter %d: origin headers %v", i, d.headers)
		}
		if _, err := time.Parse(schemas.TimeLayout, d.headers[schemas.HeaderDLQTime]); err != nil {
			t.Errorf("dead letter %d: dlq_time %q", i, d.headers[schemas.HeaderDLQTime])
		}
	}
	if dead[0].headers["x-origin"] != "test" {
		t.Errorf("the source record's headers were not kept")
	}
	n := 0
	for _, h := range dead[0].raw {
		if h.Key == schemas.HeaderDLQReason {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d dlq_reason headers, want 1 (old dead-letter headers must be dropped)", n)
	}
	if n := testutil.ToFloat64(r.metrics.Skipped.WithLabelValues("eleme", normalize.SkipNotOrderEvent)); n != 1 {
		t.Errorf("skipped %v, want 1 not_order_event", n)
	}
	if n := testutil.ToFloat64(r.metrics.DeadLettered.WithLabelValues("dianwoda", "panic")); n != 1 {
		t.Errorf("dead-lettered panic %v, want 1", n)
	}
}

// flakyStore fails its first n calls, as a Redis outage would.
type flakyStore struct {
	Store
	fails atomic.Int64
}

func (f *flakyStore) Claim(ctx context.Context, evs []orderstate.Event) ([]orderstate.Result, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, errors.New("redis: connection refused")
	}
	return f.Store.Claim(ctx, evs)
}

// flakyWriter fails its first n writes, as a broker outage would.
type flakyWriter struct {
	Writer
	fails atomic.Int64
}

func (f *flakyWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if f.fails.Add(-1) >= 0 {
		return errors.New("kafka: broker not available")
	}
	return f.Writer.WriteMessages(ctx, msgs...)
}

func TestOutageBacksOffFailsReadinessAndResumes(t *testing.T) {
	e := newEnv(t, 1)
	fs := &flakyStore{}
	fs.fails.Store(3)
	fw := &flakyWriter{}
	fw.fails.Store(3)
	r := e.start(options{
		store:  func(s Store) Store { fs.Store = s; return fs },
		status: func(w Writer, _ context.CancelFunc) Writer { fw.Writer = w; return fw },
	})
	defer r.stop(t)
	e.produce(dianwoda(t, "R1", "1", "dispatched", "rider_dispatch", 1000), dianwoda(t, "R1", "2", "arrived", "rider_arrive", 2000))
	r.waitCommitted(t, 2)
	cur, ever := r.ready.get(CheckLoop)
	if !ever || cur != nil {
		t.Errorf("loop readiness: ever failed %v, now %v; want failed then recovered", ever, cur)
	}
	if got := e.readAll(e.status, 2, 2*time.Second); len(got) != 2 {
		t.Fatalf("%d events after the outage, want 2", len(got))
	}
	if n := testutil.ToFloat64(r.metrics.Retries.WithLabelValues(CheckRedis)); n < 3 {
		t.Errorf("redis retries %v, want >= 3", n)
	}
}

// stoppingWriter cancels the consumer's context on its nth write, after (or instead of)
// writing: a stop in the middle of a batch, between "written" and "confirmed and committed".
type stoppingWriter struct {
	Writer
	n          atomic.Int64
	at         int64
	afterWrite bool
	cancel     func()
}

func (s *stoppingWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if s.n.Add(1) == s.at {
		if s.afterWrite {
			err := s.Writer.WriteMessages(ctx, msgs...)
			s.cancel()
			if err != nil {
				return err
			}
			return context.Canceled
		}
		s.cancel()
		return context.Canceled
	}
	return s.Writer.WriteMessages(ctx, msgs...)
}

// sameOrLaterStale: a copy of an event_id is the same record, except that a replayed copy the
// order guard has moved past since the first emission is marked stale (orderstate: it lands
// after the newer event, and must not become the order's latest non-stale state).
func sameOrLaterStale(first, later []byte) bool {
	if bytes.Equal(first, later) {
		return true
	}
	var a, b schemas.StatusEvent
	if json.Unmarshal(first, &a) != nil || json.Unmarshal(later, &b) != nil || a.Stale || !b.Stale {
		return false
	}
	b.Stale = false
	again, err := json.Marshal(b)
	if err != nil {
		return false
	}
	var x, y map[string]any
	return json.Unmarshal(first, &x) == nil && json.Unmarshal(again, &y) == nil && reflect.DeepEqual(x, y)
}

// TestStopMidBatchAndRestartLosesNothing kills the consumer repeatedly in the middle of batches
// (before a write, after a write but before confirm and commit, and at arbitrary moments; a stop
// without any drain, as a crash or a drain cut short is), restarts it, and checks that every transition was emitted, under one event_id only, and that
// every copy of an event_id is the same record (or, replayed after a newer event, marked stale).
func TestStopMidBatchAndRestartLosesNothing(t *testing.T) {
	e := newEnv(t, 3)
	var msgs []kafka.Message
	for o := 0; o < 60; o++ {
		id := fmt.Sprintf("S%03d", o)
		steps := []struct {
			st, code string
			at       int64
		}{{"dispatched", "rider_dispatch", 10}, {"arrived", "rider_arrive", 20}, {"obtained", "rider_obtain", 30}, {"completed", "customer_sign", 40}}
		for i, s := range steps {
			msgs = append(msgs, dianwoda(t, id, fmt.Sprint(i), s.st, s.code, 1_000_000+s.at*1000))
		}
		// a re-send under a new id and a late arrival of an earlier step
		msgs = append(msgs, dianwoda(t, id, "resent", "arrived", "rider_arrive", 1_020_000))
		msgs = append(msgs, dianwoda(t, id, "late", "dispatched", "rider_dispatch", 1_010_000))
	}
	want := map[string]bool{}
	for _, m := range msgs {
		res, err := normalize.Record(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		want[res.Event.EventID] = true
	}
	e.produce(msgs...)

	stops := []struct {
		at         int64
		afterWrite bool
	}{{1, false}, {1, true}, {2, true}, {3, false}}
	for _, s := range stops {
		r := e.start(options{batch: 50, drain: time.Nanosecond, status: func(w Writer, stop context.CancelFunc) Writer {
			return &stoppingWriter{Writer: w, at: s.at, afterWrite: s.afterWrite, cancel: stop}
		}})
		select {
		case <-r.done:
		case <-time.After(60 * time.Second):
			t.Fatal("the stopping writer never stopped the consumer")
		}
	}
	// An arbitrary-moment stop as well, then a run to the end.
	r := e.start(options{batch: 50, drain: time.Nanosecond})
	time.Sleep(150 * time.Millisecond)
	r.stop(t)
	r = e.start(options{batch: 50})
	defer r.stop(t)
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := e.readAll(e.status, len(want), 1500*time.Millisecond)
		ids := map[string][]byte{}
		transitions := map[string]map[string]bool{}
		for _, o := range got {
			if prev, ok := ids[o.ev.EventID]; ok && !sameOrLaterStale(prev, o.value) {
				t.Fatalf("event_id %s emitted as two different records:\n%s\n%s", o.ev.EventID, prev, o.value)
			}
			ids[o.ev.EventID] = o.value
			tr := o.ev.OrderID + "|" + o.ev.PlatformStatus + "|" + o.ev.OccurredAt.String()
			if transitions[tr] == nil {
				transitions[tr] = map[string]bool{}
			}
			transitions[tr][o.ev.EventID] = true
		}
		for tr, s := range transitions {
			if len(s) != 1 {
				t.Fatalf("transition %s under %d event ids", tr, len(s))
			}
		}
		var missing []string
		for id := range want {
			if ids[id] == nil {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			if len(ids) != len(want) {
				t.Fatalf("%d distinct events, want %d", len(ids), len(want))
			}
			t.Logf("%d records, %d distinct events, %d emitted in total (replays after stops included)", len(msgs), len(want), len(got))
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			t.Fatalf("%d events never emitted, e.g. %v", len(missing), missing[:min(3, len(missing))])
		}
	}
}

// TestTwoInstancesShareTheWork: two consumers in one group split the partitions; together they
// emit every transition, per-order order holds (the guard marks nothing stale in an in-order
// stream), and replays around the rebalance only repeat identical records.
func TestTwoInstancesShareTheWork(t *testing.T) {
	e := newEnv(t, 4)
	a := e.start(options{batch: 20})
	defer a.stop(t)
	b := e.start(options{batch: 20})
	defer b.stop(t)
	time.Sleep(3 * time.Second) // let the group settle with both members
	var msgs []kafka.Message
	want := map[string]bool{}
	for o := 0; o < 40; o++ {
		id := fmt.Sprintf("X%02d", o)
		for i, s := range []struct{ st, code string }{{"dispatched", "rider_dispatch"}, {"arrived", "rider_arrive"}, {"obtained", "rider_obtain"}, {"completed", "customer_sign"}} {
			m := dianwoda(t, id, fmt.Sprint(i), s.st, s.code, int64(1_000_000+i*1000))
			msgs = append(msgs, m)
			res, _ := normalize.Record(m.Value)
			want[res.Event.EventID] = true
		}
	}
	e.produce(msgs...)
	got := e.readAll(e.status, len(want), 2*time.Second)
	seen := map[string][]byte{}
	for _, o := range got {
		prev, copied := seen[o.ev.EventID]
		if copied && !sameOrLaterStale(prev, o.value) {
			t.Fatalf("event_id %s emitted as two different records", o.ev.EventID)
		}
		seen[o.ev.EventID] = o.value
		if o.ev.Stale && !copied {
			t.Errorf("%s %s is stale in an in-order stream", o.ev.OrderID, o.ev.Status)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("%d distinct events, want %d", len(seen), len(want))
	}
	ca, cb := testutil.ToFloat64(a.metrics.Committed), testutil.ToFloat64(b.metrics.Committed)
	if ca == 0 || cb == 0 {
		t.Errorf("the partitions were not shared: committed %v and %v", ca, cb)
	}
}

// TestRealRedisOutage stops a Redis of the test's own (deploy/local/redis.sh on another port)
// under a running consumer: nothing is committed or emitted while it is down, readiness says so,
// and once it is back the loop resumes by itself and loses nothing.
func TestRealRedisOutage(t *testing.T) {
	root := os.Getenv("ORDERPIPE_ROOT")
	if root == "" {
		testenv.Redis(t) // skips (or fails under CI) with the usual message when there is no test env
		t.Skip("ORDERPIPE_ROOT is not set: cannot start a Redis of this test's own")
	}
	e := newEnv(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	dir := t.TempDir()
	redisCtl := func(action string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(root, "deploy/local/redis.sh"), action)
		cmd.Env = append(os.Environ(), "REDIS_PORT="+port, "REDIS_RUN_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("redis.sh %s: %v\n%s", action, err, out)
		}
	}
	redisCtl("start")
	t.Cleanup(func() { redisCtl("stop") })
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:" + port}, MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
	defer rdb.Close()
	own := orderstate.New(rdb, "op:", time.Hour)
	r := e.start(options{store: func(Store) Store { return own }})
	defer r.stop(t)

	e.produce(dianwoda(t, "U1", "1", "dispatched", "rider_dispatch", 1000))
	r.waitCommitted(t, 1)
	redisCtl("stop")
	e.produce(dianwoda(t, "U1", "2", "arrived", "rider_arrive", 2000), dianwoda(t, "U1", "3", "obtained", "rider_obtain", 3000))
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The loop reports its own calls under CheckLoop (CheckRedis is main's ping, not run here).
		if cur, _ := r.ready.get(CheckLoop); cur != nil && strings.Contains(cur.Error(), CheckRedis) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readiness never reported Redis down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if c := testutil.ToFloat64(r.metrics.Committed); c != 1 {
		t.Fatalf("committed %v records while Redis was down, want 1", c)
	}
	if got := e.readAll(e.status, 1, time.Second); len(got) != 1 {
		t.Fatalf("%d events while Redis was down, want 1", len(got))
	}
	redisCtl("start")
	r.waitCommitted(t, 3)
	if cur, _ := r.ready.get(CheckLoop); cur != nil {
		t.Errorf("readiness still failing after Redis came back: %v", cur)
	}
	if got := e.readAll(e.status, 3, 2*time.Second); len(got) != 3 {
		t.Fatalf("%d events after Redis came back, want 3", len(got))
	}
}

// TestDuplicatesAcrossPipelinedBatches: with tiny batches, a duplicate often arrives in the batch
// after its original, while the original is still being written or confirmed; it must still be
// dropped, not emitted a second time.
func TestDuplicatesAcrossPipelinedBatches(t *testing.T) {
	e := newEnv(t, 2)
	var msgs []kafka.Message
	distinct := 0
	for o := 0; o < 100; o++ {
		id := fmt.Sprintf("P%03d", o)
		for i, s := range []struct{ st, code string }{{"dispatched", "rider_dispatch"}, {"arrived", "rider_arrive"}, {"completed", "customer_sign"}} {
			m := dianwoda(t, id, fmt.Sprint(i), s.st, s.code, int64(1_000_000+i*1000))
			msgs = append(msgs, m, m) // the platform retries at once
			distinct++
		}
	}
	r := e.start(options{batch: 10})
	defer r.stop(t)
	e.produce(msgs...)
	r.waitCommitted(t, len(msgs))
	emitted := testutil.ToFloat64(r.metrics.Emitted.WithLabelValues("dianwoda", "delivery"))
	dedup := testutil.ToFloat64(r.metrics.Deduplicated.WithLabelValues("dianwoda"))
	if int(emitted) != distinct || int(dedup) != len(msgs)-distinct {
		t.Fatalf("emitted %v, deduplicated %v; want %d and %d", emitted, dedup, distinct, len(msgs)-distinct)
	}
}
