package kafkaio_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

func produce(t *testing.T, ctx context.Context, brokers []string, topic string, keys, perKey int, from int) {
	t.Helper()
	p := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topic: topic})
	defer p.Close()
	var msgs []kafka.Message
	for i := from; i < from+perKey; i++ {
		for k := range keys {
			msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", k), Value: []byte(strconv.Itoa(i)),
				Headers: []kafka.Header{{Key: "n", Value: []byte(strconv.Itoa(i))}}})
		}
	}
	if err := p.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// fetchN fetches n records and checks that each key's values come in order, from next[key] on.
func fetchN(t *testing.T, ctx context.Context, r *kafkaio.FetchReader, n int, next map[string]int) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for range n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch after %d of %d: %v", len(out), n, err)
		}
		v, _ := strconv.Atoi(string(m.Value))
		if want := next[string(m.Key)]; v != want {
			t.Fatalf("key %s: got value %d, want %d (order or loss)", m.Key, v, want)
		}
		if kafkaio.Header(m, "n") != string(m.Value) {
			t.Fatalf("header lost: %+v", m.Headers)
		}
		next[string(m.Key)] = v + 1
		out = append(out, m)
	}
	return out
}

// A reader without a group reads every partition it is given from the first offset, each key's
// records in order, with their keys, values and headers; records written while it waits arrive.
func TestFetchReaderReadsPartitionsInOrder(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.Name(t, "fetch")
	testenv.Topics(t, brokers, 4, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	produce(t, ctx, brokers, topic, 8, 50, 0)

	r := kafkaio.NewFetchReader(kafkaio.ReaderConfig{Brokers: brokers, Topic: topic, MaxBytes: 4 << 10}, 0, 1, 2, 3)
	defer r.Close()
	next := map[string]int{}
	fetchN(t, ctx, r, 400, next)
	produce(t, ctx, brokers, topic, 8, 5, 50)
	fetchN(t, ctx, r, 40, next)
	for k, v := range next {
		if v != 55 {
			t.Errorf("key %s ended at %d, want 55", k, v)
		}
	}
}

// A member commits part of what it read and leaves; the next member of the group starts at the
// committed offsets: the uncommitted records come back, the committed ones do not.
func TestFetchReaderGroupResumesAtCommit(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.Name(t, "fetch")
	group := testenv.Name(t, "group")
	testenv.Topics(t, brokers, 3, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	produce(t, ctx, brokers, topic, 6, 10, 0)

	r := kafkaio.NewFetchReader(kafkaio.ReaderConfig{Brokers: brokers, GroupID: group, Topic: topic})
	next := map[string]int{}
	got := fetchN(t, ctx, r, 60, next)
	// Commit, per partition, up to and including each key's value 4.
	var commit []kafka.Message
	for _, m := range got {
		if v, _ := strconv.Atoi(string(m.Value)); v <= 4 {
			commit = append(commit, m)
		}
	}
	if err := r.CommitMessages(ctx, commit...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	r2 := kafkaio.NewFetchReader(kafkaio.ReaderConfig{Brokers: brokers, GroupID: group, Topic: topic})
	defer r2.Close()
	next = map[string]int{}
	for k := range 6 {
		next[fmt.Sprintf("k%d", k)] = 5
	}
	fetchN(t, ctx, r2, 30, next)
	if err := r2.CommitMessages(ctx, kafka.Message{Topic: "other", Partition: 0, Offset: 1}); err == nil {
		t.Error("a commit of another topic's message was accepted")
	}
}

// When a second member joins, the first one's generation ends: before rejoining, the first
// waits for the records it handed out to be committed, so the newcomer starts after them
// instead of replaying them; a commit the first makes later for a partition it lost does not
// move that partition's offset back.
func TestFetchReaderRebalanceDrainsAndNeverRewinds(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.Name(t, "fetch")
	group := testenv.Name(t, "group")
	testenv.Topics(t, brokers, 2, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	produce(t, ctx, brokers, topic, 8, 10, 0)

	a := kafkaio.NewFetchReader(kafkaio.ReaderConfig{Brokers: brokers, GroupID: group, Topic: topic, DrainTimeout: 20 * time.Second})
	defer a.Close()
	nextA := map[string]int{}
	got := fetchN(t, ctx, a, 80, nextA)
	// The first record of each partition, committed again at the end; and the offset every
	// partition must keep at least.
	var early []kafka.Message
	floor := map[int]int64{}
	for _, m := range got {
		if _, ok := floor[m.Partition]; !ok {
			early = append(early, m)
		}
		floor[m.Partition] = m.Offset + 1
	}

	// B joins. A's generation ends; A is still working on what it fetched, and commits it 2 s
	// later, within the drain window.
	b := kafkaio.NewFetchReader(kafkaio.ReaderConfig{Brokers: brokers, GroupID: group, Topic: topic})
	defer b.Close()
	time.Sleep(2 * time.Second)
	if err := a.CommitMessages(ctx, got...); err != nil {
		t.Fatalf("A's commit during the rebalance: %v", err)
	}
	produce(t, ctx, brokers, topic, 8, 2, 10)

	// Between them, A and B read exactly the 16 new records: none of the 80 comes back.
	seen := map[string][]int{}
	var bMsgs []kafka.Message
	deadline := time.Now().Add(60 * time.Second)
	for n := 0; n < 16; {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of 16 new records: %v", n, seen)
		}
		for _, r := range []*kafkaio.FetchReader{a, b} {
			fctx, fcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			m, err := r.FetchMessage(fctx)
			fcancel()
			if err != nil {
				continue
			}
			v, _ := strconv.Atoi(string(m.Value))
			if v < 10 {
				t.Fatalf("record %s=%d replayed after it was committed in the drain", m.Key, v)
			}
			seen[string(m.Key)] = append(seen[string(m.Key)], v)
			if r == b {
				bMsgs = append(bMsgs, m)
			}
			n++
		}
	}
	for k, vs := range seen {
		if len(vs) != 2 || vs[0] != 10 || vs[1] != 11 {
			t.Errorf("key %s: got %v, want [10 11]", k, vs)
		}
	}
	if len(bMsgs) == 0 {
		t.Fatal("B got no partition")
	}
	if err := b.CommitMessages(ctx, bMsgs...); err != nil {
		t.Fatalf("B's commit: %v", err)
	}
	// A commits the early records again: neither the partition it lost nor the one it kept
	// goes back.
	if err := a.CommitMessages(ctx, early...); err != nil {
		t.Fatalf("A's late commit: %v", err)
	}
	cl := kafkaio.Plaintext(brokers...).NewClient(10 * time.Second)
	defer cl.Close()
	res, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1}}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	for _, m := range bMsgs {
		floor[m.Partition] = max(floor[m.Partition], m.Offset+1)
	}
	for _, p := range res.Topics[topic] {
		if p.CommittedOffset < floor[p.Partition] {
			t.Errorf("partition %d: committed %d, want at least %d (rewound by A's late commit)", p.Partition, p.CommittedOffset, floor[p.Partition])
		}
	}
}

// A group reader that cannot be made (no brokers) says so on every call instead of waiting for
// records that never come.
func TestFetchReaderWithoutBrokersFails(t *testing.T) {
	r := kafkaio.NewFetchReader(kafkaio.ReaderConfig{GroupID: "g", Topic: "t"})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 2 {
		if _, err := r.FetchMessage(ctx); err == nil || ctx.Err() != nil {
			t.Fatalf("FetchMessage = %v (ctx %v), want the construction error at once", err, ctx.Err())
		}
	}
	if err := r.CommitMessages(ctx, kafka.Message{Partition: 0, Offset: 1}); err == nil {
		t.Error("CommitMessages accepted a commit on a reader that was never made")
	}
}
