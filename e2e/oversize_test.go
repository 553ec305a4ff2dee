package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/e2e/callbacks"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/schemas"
)

// TestOversizedCallbackIsDeadLetteredAndTheNextFlows: a signed Dianwoda callback of ~160 KiB
// whose action_detail is all '<', '>' and '&' is accepted by the ingress (its body is far below
// INGRESS_MAX_BODY), but its unified event, with each of those escaped to six bytes, is larger
// than the status topic's batches take. The normalizer dead-letters it (too_large) and the next
// callback is normalized: poison never blocks.
func TestOversizedCallbackIsDeadLetteredAndTheNextFlows(t *testing.T) {
	p := startPipeline(t)
	now := time.Now().Add(-time.Minute).UnixMilli()
	post := func(c callbacks.DianwodaContent, msgID string) {
		t.Helper()
		body, _ := json.Marshal(struct {
			Content      callbacks.DianwodaContent `json:"content"`
			DeliverTimes int                       `json:"deliver_times"`
			MsgID        string                    `json:"msg_id"`
			PubTime      int64                     `json:"pub_time"`
		}{c, 1, msgID, now})
		// The platform sends '<', '>' and '&' as they are, not as json.Marshal's \u003c.
		body = []byte(strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(body)))
		q := url.Values{}
		q.Set("type", callbacks.DianwodaType)
		q.Set("timestamp", fmt.Sprint(now))
		q.Set("nonce", "77")
		q.Set("sign", callbacks.DianwodaSign(testDianwodaSecret, q, body))
		deadline := time.Now().Add(15 * time.Second)
		for {
			res, err := http.Post(p.ingressURL+"/v1/callbacks/dianwoda?"+q.Encode(), "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			reply, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			if res.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
				t.Fatalf("ingress reply %d %s for a %d-byte body", res.StatusCode, reply, len(body))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	detail := strings.Repeat("<>&", 160<<10/3)
	post(callbacks.DianwodaContent{OrderOriginalID: "BIG1", OrderStatus: "abnormal", ActionCode: "customer_sign_abnormal",
		ActionSubCode: "other", ActionDetail: detail, TimeStatusUpdate: now}, "big")
	post(callbacks.DianwodaContent{OrderOriginalID: "AFTER1", OrderStatus: "completed", ActionCode: "customer_sign",
		TimeStatusUpdate: now}, "after")

	dead := consume(t, p.brokers, p.topics.RawDLQ, 1, func(kafka.Message) bool { return true })[0]
	if string(dead.Key) != "dianwoda:BIG1" || kafkaio.Header(dead, schemas.HeaderDLQReason) != schemas.DLQReasonTooLarge {
		t.Fatalf("dead letter %s with reason %q, want dianwoda:BIG1 too_large", dead.Key, kafkaio.Header(dead, schemas.HeaderDLQReason))
	}
	var env schemas.RawEnvelope
	if err := json.Unmarshal(dead.Value, &env); err != nil || !bytes.Contains(env.Body, []byte(detail)) {
		t.Fatalf("dead letter is not the raw record whole: %v", err)
	}
	ev := decodeEvent(t, consume(t, p.brokers, p.topics.Status, 1, func(m kafka.Message) bool { return string(m.Key) == "dianwoda:AFTER1" })[0])
	if ev.Status != schemas.StatusDelivered {
		t.Fatalf("event after the oversized one: %+v", ev)
	}
}
