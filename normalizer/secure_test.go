package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/service/servicetest"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

// TestSecuredReadiness runs the normalizer against SASL_SSL Kafka (SCRAM-SHA-512) and TLS + ACL
// Redis: with the right settings it turns a raw record into a status event; with a wrong Kafka
// password, a wrong CA, a wrong Redis password or unreachable sentinels it stays not ready, logs
// the variable to check, and writes no event, no dead letter and no Redis key.
func TestSecuredReadiness(t *testing.T) {
	servicetest.Each(t, true, func(t *testing.T, in servicetest.Infra, tc servicetest.Case) {
		raw, status, dlq := testenv.Name(t, "raw"), testenv.Name(t, "status"), testenv.Name(t, "dlq")
		prefix := testenv.Name(t, "op") + ":"
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		// A plausible time: the normalizer dead-letters one far from received_at (implausible_time).
		now := time.Now()
		body := fmt.Sprintf(`{"content":{"order_original_id":"S1","order_status":"completed","action_code":"customer_sign","time_status_update":%d},"deliver_times":1,"msg_id":"x","pub_time":1}`, now.Add(-time.Second).UnixMilli())
		v, _ := json.Marshal(schemas.RawEnvelope{Version: 1, IngressID: "i", Platform: "dianwoda", OrderID: "S1", ReceivedAt: schemas.At(now), Body: []byte(body)})
		servicetest.Seed(ctx, t, in.Kafka, []string{raw, status, dlq}, raw, kafka.Message{Key: []byte("dianwoda:S1"), Value: v})
		tc.Env = servicetest.With(tc.Env, map[string]string{
			"TOPIC_RAW": raw, "TOPIC_STATUS": status, "TOPIC_RAW_DLQ": dlq, "KAFKA_GROUP_ID": testenv.Name(t, "g"),
			"REDIS_KEY_PREFIX": prefix, "LOG_LEVEL": "info",
			// Without Redis the fetched record's batch cannot finish, so the stop at the end
			// waits out the whole drain (20 s by default) before it leaves it uncommitted; the
			// stop is not what this test is about.
			"DRAIN_TIMEOUT": "2s",
		})
		written := func(t *testing.T) int {
			return servicetest.Records(t, in.Kafka, status) + servicetest.Records(t, in.Kafka, dlq) + in.RedisKeys(t, prefix)
		}
		done := func(t *testing.T) error {
			if n := servicetest.Records(t, in.Kafka, status); n != 1 {
				return fmt.Errorf("%d status events, want 1", n)
			}
			return nil
		}
		in.Run(t, tc, startInProcess, 3*time.Second, written, done)
	})
}

// startInProcess runs the normalizer as main would, on an ops port of its own.
var startInProcess = servicetest.InProcess(run)
