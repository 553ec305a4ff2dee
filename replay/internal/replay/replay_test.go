package replay_test

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/replay/internal/replay"
	"github.com/orderpipe/pipeline/schemas"
)

func dead(key, value, origin, reason string) kafka.Message {
	return kafka.Message{Key: []byte(key), Value: []byte(value), Headers: []kafka.Header{
		{Key: "content-type", Value: []byte("application/json")},
		{Key: schemas.HeaderDLQReason, Value: []byte(reason)},
		{Key: schemas.HeaderDLQTopic, Value: []byte(origin)},
		{Key: schemas.HeaderDLQPartition, Value: []byte("0")},
		{Key: schemas.HeaderDLQOffset, Value: []byte("7")},
	}}
}

// readAll returns every record of topic (read with a fresh group from the beginning) within a
// short idle window after the last one.
func readAll(t *testing.T, brokers []string, topic string, want int) []kafka.Message {
	t.Helper()
	r := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: brokers, GroupID: testenv.Name(t, "read"), Topic: topic})
	defer r.Close()
	var out []kafka.Message
	for {
		wait := 3 * time.Second
		if len(out) < want {
			wait = 30 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		m, err := r.FetchMessage(ctx)
		cancel()
		if err != nil {
			return out
		}
		out = append(out, m)
	}
}

func TestReplayDeadLettersToTheirOrigin(t *testing.T) {
	brokers := testenv.Kafka(t)
	dlq, raw, status := testenv.Name(t, "dlq"), testenv.Name(t, "raw"), testenv.Name(t, "status")
	testenv.Topics(t, brokers, 3, dlq, raw, status)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: brokers, Topic: dlq})
	defer w.Close()
	if err := w.WriteMessages(ctx,
		dead("eleme:1", "a", raw, "decode"),
		dead("dianwoda:2", "b", raw, "validate"),
		dead("eleme:3", "c", status, "decode"),
		dead("eleme:4", "d", raw, "panic"),
	); err != nil {
		t.Fatal(err)
	}

	// A dry run reports and writes nothing.
	var out bytes.Buffer
	res, err := replay.Run(ctx, replay.Options{Conn: kafkaio.Plaintext(brokers...), From: dlq, Reason: "decode", DryRun: true, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != 2 || res.Written != 0 || !strings.Contains(out.String(), "would replay") {
		t.Errorf("dry run: %+v\n%s", res, out.String())
	}

	// Only decode failures of eleme, each back to the topic it came from, same key and value,
	// the dead-letter headers gone and the origin named.
	res, err = replay.Run(ctx, replay.Options{Conn: kafkaio.Plaintext(brokers...), From: dlq, Reason: "decode", Platform: "eleme"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != 2 || res.Written != 2 || res.Scanned != 4 {
		t.Errorf("replay: %+v, want 4 scanned, 2 matched and written", res)
	}
	gotRaw := readAll(t, brokers, raw, 1)
	gotStatus := readAll(t, brokers, status, 1)
	if len(gotRaw) != 1 || string(gotRaw[0].Key) != "eleme:1" || string(gotRaw[0].Value) != "a" {
		t.Fatalf("raw topic got %v, want only eleme:1", gotRaw)
	}
	if len(gotStatus) != 1 || string(gotStatus[0].Key) != "eleme:3" {
		t.Fatalf("status topic got %v, want only eleme:3", gotStatus)
	}
	m := gotRaw[0]
	if kafkaio.Header(m, schemas.HeaderDLQReason) != "" || kafkaio.Header(m, "content-type") != "application/json" {
		t.Errorf("headers = %v: want dlq_* dropped and others kept", m.Headers)
	}
	if src := kafkaio.Header(m, replay.HeaderReplaySource); !strings.HasPrefix(src, dlq+"/") {
		t.Errorf("replay_source = %q", src)
	}
}

func TestReplayRawByTimeRangeAndOrder(t *testing.T) {
	brokers := testenv.Kafka(t)
	raw, target := testenv.Name(t, "raw"), testenv.Name(t, "target")
	testenv.Topics(t, brokers, 3, raw, target)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := kafkaio.NewWriter(kafkaio.WriterConfig{Brokers: brokers, Topic: raw})
	defer w.Close()
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var msgs []kafka.Message
	for i, key := range []string{"eleme:1", "dianwoda:A", "eleme:2", "eleme:1", "dianwoda:A", "eleme:1"} {
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte{byte('0' + i)}, Time: base.Add(time.Duration(i) * time.Minute)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	// Minutes 1..4 only, order eleme:1 only: the records at minutes 3 (value "3").
	// Minute 5's eleme:1 is after -until.
	res, err := replay.Run(ctx, replay.Options{Conn: kafkaio.Plaintext(brokers...), From: raw, To: target,
		Since: base.Add(time.Minute), Until: base.Add(4 * time.Minute), Platform: "eleme", OrderID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, brokers, target, 1)
	var vals []string
	for _, m := range got {
		vals = append(vals, string(m.Value))
	}
	sort.Strings(vals)
	if strings.Join(vals, ",") != "3" || res.Written != 1 {
		t.Errorf("replayed values %v (%+v), want [3]", vals, res)
	}
	// Without -to, a raw record has no target.
	if _, err := replay.Run(ctx, replay.Options{Conn: kafkaio.Plaintext(brokers...), From: raw}); err == nil {
		t.Error("replay of raw records without -to: want an error")
	}
}
