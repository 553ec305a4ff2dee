package kafkaio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/envconfig"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// readAll reads every partition of topic from the start until it has want records.
func readAll(t *testing.T, brokers []string, topic string, partitions, want int) map[int][]kafka.Message {
	t.Helper()
	out := map[int][]kafka.Message{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	total := 0
	for p := 0; p < partitions; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
			defer r.Close()
			for {
				mu.Lock()
				done := total >= want
				mu.Unlock()
				if done {
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
				m, err := r.ReadMessage(rctx)
				rcancel()
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					continue
				}
				mu.Lock()
				out[p] = append(out[p], m)
				total++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if total < want {
		t.Fatalf("read %d records of %s, want %d", total, topic, want)
	}
	return out
}

// Every acknowledged record is in the partition the Murmur2 balancer (the Java client's) picks
// for its key, each key's records in the order its writer wrote them, and the many partitions
// written at once travel in fewer requests than partition batches: the point of the Producer.
func TestProducerKeysOrderAndRequestsPerBroker(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.Name(t, "producer")
	const partitions, writers, each = 12, 48, 40
	testenv.Topics(t, brokers, partitions, topic)
	p := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topic: topic})
	defer p.Close()

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []byte("order-" + strconv.Itoa(w))
			for i := 0; i < each; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := p.WriteMessages(ctx, kafka.Message{Key: key, Value: []byte(strconv.Itoa(i))})
				cancel()
				if err != nil {
					errs <- fmt.Errorf("writer %d record %d: %w", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	got := readAll(t, brokers, topic, partitions, writers*each)
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	next := map[string]int{}
	for part, msgs := range got {
		for _, m := range msgs {
			if want := (kafka.Murmur2Balancer{}).Balance(m, ids...); want != part {
				t.Fatalf("key %s in partition %d, Murmur2 picks %d", m.Key, part, want)
			}
			if string(m.Value) != strconv.Itoa(next[string(m.Key)]) {
				t.Fatalf("key %s: record %s where %d was due (reordered or lost)", m.Key, m.Value, next[string(m.Key)])
			}
			next[string(m.Key)]++
		}
	}
	for w := 0; w < writers; w++ {
		if n := next["order-"+strconv.Itoa(w)]; n != each {
			t.Fatalf("order-%d: %d records, want %d", w, n, each)
		}
	}
	st := p.Stats()
	t.Logf("stats: %+v (%.1f partition batches per request)", st, float64(st.Batches)/float64(st.Requests))
	if float64(st.Batches) < 1.5*float64(st.Requests) {
		t.Fatalf("%d requests carried %d partition batches: partitions are not sharing requests", st.Requests, st.Batches)
	}
	// The metrics a service registers say the same (nothing is in flight any more).
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collectors("svc_kafka")...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gathered := map[string]float64{}
	for _, mf := range mfs {
		gathered[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
	}
	for name, want := range map[string]int64{"svc_kafka_produce_requests_total": st.Requests,
		"svc_kafka_produce_batches_total": st.Batches, "svc_kafka_produce_records_total": st.Records} {
		if got, ok := gathered[name]; !ok || got != float64(want) {
			t.Errorf("%s = %v (registered: %v), want %d", name, got, ok, want)
		}
	}
	if st.Records < int64(writers*each) {
		t.Errorf("%d records sent, want at least the %d written", st.Records, writers*each)
	}
}

// A record the broker refuses as too large fails its own caller only: records that shared its
// batch are tried again alone and succeed.
func TestProducerTooLargeFailsOnlyItsCaller(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.Name(t, "producer-large")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkaio.EnsureTopics(ctx, brokers, kafkaio.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"max.message.bytes": strconv.Itoa(64 << 10)}}); err != nil {
		t.Fatal(err)
	}
	p := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topic: topic})
	defer p.Close()
	// Warm the connection so the writes below queue behind each other into one batch.
	if err := p.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("warm")}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]error, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := []byte("small-" + strconv.Itoa(i))
			if i == 7 {
				v = bytes.Repeat([]byte("x"), 200<<10)
			}
			results[i] = p.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: v})
		}()
	}
	wg.Wait()
	for i, err := range results {
		if i == 7 {
			if !errors.Is(err, kafka.MessageSizeTooLarge) {
				t.Fatalf("the oversized record: %v, want MessageSizeTooLarge", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("small record %d failed with the large one: %v", i, err)
		}
	}
	got := readAll(t, brokers, topic, 1, 20)
	if n := len(got[0]); n != 20 {
		t.Fatalf("%d records on the topic, want 20 (warm-up + 19 small)", n)
	}
}

func TestProducerUnknownTopicFailsFast(t *testing.T) {
	brokers := testenv.Kafka(t)
	p := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers})
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := p.WriteMessages(ctx, kafka.Message{Topic: testenv.Name(t, "missing"), Value: []byte("x")})
	if !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Fatalf("write to a missing topic: %v, want UnknownTopicOrPartition", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %s to fail", time.Since(start))
	}
}

// With the broker down a write ends with its context, unacknowledged (the caller answers 503
// and the platform retries), and is never sent later; with the broker back the same Producer
// writes again, and every acknowledged record is there.
func TestProducerBrokerDownThenBack(t *testing.T) {
	b := testenv.OwnKafka(t)
	topic := testenv.Name(t, "producer-down")
	testenv.Topics(t, b.Brokers, 3, topic)
	p := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: b.Brokers, Topic: topic, WriteTimeout: 3 * time.Second})
	defer p.Close()
	write := func(v string, d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return p.WriteMessages(ctx, kafka.Message{Key: []byte(v), Value: []byte(v)})
	}
	if err := write("before", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: stopping the broker", time.Now().Format(time.StampMilli))
	b.Stop()
	t.Logf("%s: stopped", time.Now().Format(time.StampMilli))
	if err := write("during", 2*time.Second); err == nil {
		t.Fatal("a write with the broker down was acknowledged")
	}
	t.Logf("%s: restarting", time.Now().Format(time.StampMilli))
	b.Restart()
	t.Logf("%s: restarted", time.Now().Format(time.StampMilli))
	deadline := time.Now().Add(45 * time.Second)
	for {
		err := write("after", 5*time.Second)
		if err == nil {
			t.Logf("%s: written again", time.Now().Format(time.StampMilli))
			break
		}
		t.Logf("%s: %v", time.Now().Format(time.StampMilli), err)
		if time.Now().After(deadline) {
			t.Fatalf("no write succeeded within 45 s of the restart: %v", err)
		}
	}
	got := readAll(t, b.Brokers, topic, 3, 2)
	seen := map[string]bool{}
	for _, msgs := range got {
		for _, m := range msgs {
			seen[string(m.Value)] = true
		}
	}
	if !seen["before"] || !seen["after"] {
		t.Fatalf("acknowledged records missing: %v", seen)
	}
	// "during" waited for the broker in the Producer's queue; its caller gave up while the
	// broker was down, so it is dropped when its turn comes, never sent.
	if seen["during"] {
		t.Fatal("a record whose caller had given up while the broker was down was written once it was back")
	}
}

func TestProducerCloseFailsLaterWrites(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.Name(t, "producer-close")
	testenv.Topics(t, brokers, 1, topic)
	p := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topic: topic})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WriteMessages(ctx, kafka.Message{Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteMessages(ctx, kafka.Message{Value: []byte("y")}); !errors.Is(err, kafkaio.ErrProducerClosed) {
		t.Fatalf("write after Close: %v, want ErrProducerClosed", err)
	}
}

// With Linger, records that arrive within Linger of a broker's last request wait and go
// together in the next one, at most Linger after it; the first record after a quiet spell goes
// at once; and LingerBytes waiting end the linger early.
func TestProducerLinger(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.Name(t, "producer-linger")
	testenv.Topics(t, brokers, 3, topic)
	leaders := leadersOf(t, brokers, topic)
	const linger = 2 * time.Second
	p := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topic: topic, Linger: linger, LingerBytes: 4 << 10})
	defer p.Close()
	write := func(key string, size int) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		err := p.WriteMessages(ctx, kafka.Message{Key: []byte(key), Value: make([]byte, size)})
		return time.Since(start), err
	}
	// A first write on a topic just made may meet a leader not yet known and be retried, and a
	// retry within the linger waits for it: warm up, then let the linger pass.
	if _, err := write("warm-up", 10); err != nil {
		t.Fatal(err)
	}
	time.Sleep(linger + 100*time.Millisecond)
	// No request for longer than the linger, so no wait (a linger would take 2 s).
	if took, err := write("first", 10); err != nil || took > linger/2 {
		t.Fatalf("first record after a quiet spell: %v after %v, want it sent at once", err, took)
	}
	sent := time.Now()
	before := p.Stats().Requests
	// Eight small records at once, right after: they wait out the linger, then go together.
	var wg sync.WaitGroup
	took := make([]time.Duration, 8)
	errs := make([]error, 8)
	for i := range took {
		wg.Go(func() { took[i], errs[i] = write("small-"+strconv.Itoa(i), 10) })
	}
	wg.Wait()
	waited := time.Since(sent)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("small record %d: %v", i, err)
		}
	}
	if waited < linger*3/4 || waited > linger+5*time.Second {
		t.Errorf("the small records were acknowledged %v after the first one's request, want about the %v linger", waited, linger)
	}
	// One request per broker: the topic's partitions all on the one broker of make test, on up to
	// three leaders with TEST_KAFKA_CLUSTER=1.
	if n := p.Stats().Requests - before; n < 1 || n > int64(leaders) {
		t.Errorf("the small records took %d requests, want them together in 1 per leader (%d)", n, leaders)
	}
	// Right after that request: records of LingerBytes go at once.
	if took, err := write("large", 5<<10); err != nil || took > linger/2 {
		t.Fatalf("a record of LingerBytes: %v after %v, want it sent without waiting for the linger", err, took)
	}
	readAll(t, brokers, topic, 3, 11)
}

// KAFKA_PRODUCER_LINGER (default 2 ms, or a service's own through WithDefaultProducerLinger) is
// read for the Conn's Producers; a bad value is refused by name.
func TestProducerLingerFromEnv(t *testing.T) {
	env := map[string]string{"KAFKA_BROKERS": "127.0.0.1:9092"}
	for value, want := range map[string]time.Duration{"": kafkaio.DefaultProducerLinger, "3ms": 3 * time.Millisecond, "0": 0} {
		env["KAFKA_PRODUCER_LINGER"] = value
		l := envconfig.New(func(k string) string { return env[k] })
		conn := kafkaio.LoadConn(l)
		if l.Err() != nil {
			t.Fatalf("KAFKA_PRODUCER_LINGER=%q: %v", value, l.Err())
		}
		p := conn.NewProducer(kafkaio.ProducerConfig{Topic: "t"})
		if got := kafkaio.LingerOf(p); got != want {
			t.Errorf("KAFKA_PRODUCER_LINGER=%q: the Conn's Producer lingers %v, want %v", value, got, want)
		}
		// A Producer's own Linger wins over the Conn's.
		own := conn.NewProducer(kafkaio.ProducerConfig{Topic: "t", Linger: 7 * time.Millisecond})
		if got := kafkaio.LingerOf(own); got != 7*time.Millisecond {
			t.Errorf("KAFKA_PRODUCER_LINGER=%q: a Producer configured with 7ms lingers %v", value, got)
		}
		// A service's own default replaces DefaultProducerLinger only, never an operator's value.
		withDefault := conn.WithDefaultProducerLinger(9 * time.Millisecond)
		wantDefault := want
		if value == "" {
			wantDefault = 9 * time.Millisecond
		}
		pd := withDefault.NewProducer(kafkaio.ProducerConfig{Topic: "t"})
		if got := kafkaio.LingerOf(pd); got != wantDefault || withDefault.ProducerLinger() != wantDefault {
			t.Errorf("KAFKA_PRODUCER_LINGER=%q with a 9ms service default: the Producer lingers %v (the Conn says %v), want %v",
				value, got, withDefault.ProducerLinger(), wantDefault)
		}
		if conn.ProducerLinger() != want {
			t.Errorf("KAFKA_PRODUCER_LINGER=%q: WithDefaultProducerLinger changed the Conn it was called on", value)
		}
		p.Close()
		own.Close()
		pd.Close()
	}
	for _, bad := range []string{"-1ms", "2s", "soon"} {
		env["KAFKA_PRODUCER_LINGER"] = bad
		l := envconfig.New(func(k string) string { return env[k] })
		kafkaio.LoadConnSettings(l)
		if err := l.Err(); err == nil || !strings.Contains(err.Error(), "KAFKA_PRODUCER_LINGER") {
			t.Errorf("KAFKA_PRODUCER_LINGER=%s: err %v, want it refused by name", bad, err)
		}
	}
}

// Null and empty keys and values are written, in one call of several messages and in a lone
// one (the Producer makes the readers of both paths itself, in place of protocol.NewBytes).
// kafka-go's Reader gives nil for an empty value as for a null one, so only the text and the
// nil of a null one are checked.
func TestProducerNullAndEmptyBytes(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.Name(t, "producer-null")
	testenv.Topics(t, brokers, 1, topic)
	p := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topic: topic})
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WriteMessages(ctx,
		kafka.Message{Key: nil, Value: nil},
		kafka.Message{Key: []byte{}, Value: []byte{}},
		kafka.Message{Key: []byte("k"), Value: []byte("v")},
	); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteMessages(ctx, kafka.Message{Key: nil, Value: nil}); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, brokers, topic, 1, 4)[0]
	if len(got) != 4 {
		t.Fatalf("%d records, want 4", len(got))
	}
	for i, want := range []struct{ key, value []byte }{{nil, nil}, {[]byte{}, []byte{}}, {[]byte("k"), []byte("v")}, {nil, nil}} {
		m := got[i]
		if string(m.Key) != string(want.key) || string(m.Value) != string(want.value) ||
			(want.key == nil && m.Key != nil) || (want.value == nil && m.Value != nil) {
			t.Errorf("record %d: key %q (nil %v), value %q (nil %v); want key %q (nil %v), value %q (nil %v)", i,
				m.Key, m.Key == nil, m.Value, m.Value == nil, want.key, want.key == nil, want.value, want.value == nil)
		}
	}
}

// leadersOf counts the brokers leading topic's partitions.
func leadersOf(t *testing.T, brokers []string, topic string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := kafkaio.Plaintext(brokers...).NewClientFor(10*time.Second, topic) // not the default Transport's cached view
	defer client.Close()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %+v, %v", topic, md, err)
	}
	ids := map[int]bool{}
	for _, p := range md.Topics[0].Partitions {
		ids[p.Leader.ID] = true
	}
	return len(ids)
}
