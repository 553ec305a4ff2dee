package consumer

import (
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/normalizer/internal/normalize"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/schemas"
)

// staleField is what a stale event adds to its encoding.
const staleField = `,"stale":true`

// excerptBytes bounds the value of a dead letter too large for its topic.
const excerptBytes = 64 << 10

// eventMessage builds the Kafka record of a unified event: keyed platform:order_id, JSON value,
// CloudEvents binary-mode headers, and the raw record's traceparent when it had one.
func eventMessage(ev *schemas.StatusEvent, tp string) kafka.Message {
	v := appendEvent(make([]byte, 0, 768), ev)
	h := make([]kafka.Header, 6, 7)
	h[0] = kafka.Header{Key: schemas.HeaderCESpecVersion, Value: ceSpecVersion}
	h[1] = kafka.Header{Key: schemas.HeaderCEID, Value: []byte(ev.EventID)}
	h[2] = kafka.Header{Key: schemas.HeaderCEType, Value: ceTypeStatus}
	h[3] = kafka.Header{Key: schemas.HeaderCESource, Value: ceSource(ev.Platform)}
	h[4] = kafka.Header{Key: schemas.HeaderCETime, Value: schemas.AppendTime(make([]byte, 0, len(schemas.TimeLayout)), ev.OccurredAt.Time)}
	h[5] = kafka.Header{Key: schemas.HeaderContentType, Value: contentTypeJSON}
	if tp != "" {
		h = append(h, kafka.Header{Key: schemas.HeaderTraceparent, Value: []byte(tp)})
	}
	return kafka.Message{Key: []byte(schemas.Key(ev.Platform, ev.OrderID)), Value: v, Headers: h}
}

// The constant header values, shared by every record (nothing writes into a header value).
var (
	ceSpecVersion   = []byte(schemas.CESpecVersion)
	ceTypeStatus    = []byte(schemas.CETypeStatus)
	contentTypeJSON = []byte("application/json")
	ceSources       = map[string][]byte{
		schemas.PlatformDianwoda: []byte(schemas.CESourceNormalizer + schemas.PlatformDianwoda),
		schemas.PlatformEleme:    []byte(schemas.CESourceNormalizer + schemas.PlatformEleme),
	}
)

func ceSource(platform string) []byte {
	if v, ok := ceSources[platform]; ok {
		return v
	}
	return []byte(schemas.CESourceNormalizer + platform)
}

// recordSize bounds from above what kafka-go counts for m against a writer's BatchBytes (key,
// value, headers and their length prefixes, the record's fixed fields).
func recordSize(m kafka.Message) int {
	n := 64 + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// deadLetter is the source record unchanged (key, value, headers) plus the dead-letter headers.
// When that is larger than the dead-letter topic takes, it is an excerpt instead (reason
// too_large; see schemas.HeaderDLQExcerpt): the record stays whole on its origin topic.
func (cs *Consumer) deadLetter(it *item) kafka.Message {
	reason, detail := normalize.ReasonOf(it.err), it.err.Error()
	dl := kafkaio.DeadLetter(it.msg, schemas.DLQServiceNormalizer, reason, detail, cs.c.Now())
	if int64(recordSize(dl)) <= cs.c.MaxDeadLetterBytes {
		return dl
	}
	excerpt := kafka.Message{Topic: it.msg.Topic, Partition: it.msg.Partition, Offset: it.msg.Offset, Key: it.msg.Key,
		Value: it.msg.Value[:min(len(it.msg.Value), excerptBytes)]}
	if len(excerpt.Key) > excerptBytes {
		excerpt.Key = excerpt.Key[:excerptBytes]
	}
	dl = kafkaio.DeadLetter(excerpt, schemas.DLQServiceNormalizer, schemas.DLQReasonTooLarge,
		fmt.Sprintf("dead letter of %d bytes exceeds the dead-letter topic's %d; the value is an excerpt; first reason %s",
			recordSize(dl), cs.c.MaxDeadLetterBytes, detail), cs.c.Now())
	dl.Headers = append(dl.Headers, kafka.Header{Key: schemas.HeaderDLQExcerpt,
		Value: fmt.Appendf(nil, "%d/%d", len(excerpt.Value), len(it.msg.Value))})
	return dl
}
