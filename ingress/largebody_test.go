package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/ingress/internal/dianwoda"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

// TestLargestBodyIsStored: a callback just under the default INGRESS_MAX_BODY (1 MiB) is within
// the contract, so it must be stored and answered "success", not refused by the broker. Its
// envelope (the body in base64, plus the query and headers) is larger than the broker's default
// 1 MiB max.message.bytes, which the raw topic therefore raises.
func TestLargestBodyIsStored(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.Name(t, "raw")
	p := start(t, map[string]string{"KAFKA_BROKERS": strings.Join(brokers, ","), "TOPIC_RAW": topic})
	p.waitReady(t, 200, 60*time.Second)

	pad := strings.Repeat("签", (1<<20-400)/3) // 3 bytes each in UTF-8
	body := []byte(`{"content":{"order_original_id":"BIG1","order_status":"created","action_code":"rider_switch","action_detail":"` +
		pad + `","time_status_update":1429861697905},"deliver_times":1,"msg_id":"m-big","pub_time":1545188246307}`)
	if len(body) > 1<<20 || len(body) < 1<<20-1024 {
		t.Fatalf("premise: body is %d bytes, want just under 1 MiB", len(body))
	}
	q := "type=" + dianwoda.TypeStatusUpdate + "&timestamp=1&nonce=2&sign=" + dianwoda.Sign("2", "1", dianwoda.TypeStatusUpdate, body, dwdSecret)
	res, err := client.Post(p.httpURL+"/v1/callbacks/dianwoda?"+q, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("reply = %d %s, want 200 for a body within INGRESS_MAX_BODY", res.StatusCode, reply)
	}

	r := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: brokers, GroupID: testenv.Name(t, "g"), Topic: topic})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var m kafka.Message
	if m, err = r.FetchMessage(ctx); err != nil {
		t.Fatal(err)
	}
	var env schemas.RawEnvelope
	if err := json.Unmarshal(m.Value, &env); err != nil || !bytes.Equal(env.Body, body) {
		t.Errorf("stored envelope (%d bytes) does not hold the body byte for byte: %v", len(m.Value), err)
	}
}
