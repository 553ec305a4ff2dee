package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/dispatcher/internal/ddsandbox"
	"github.com/orderpipe/pipeline/plumbing/service/servicetest"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

// TestSecuredReadiness runs the dispatcher against SASL_SSL Kafka (SCRAM-SHA-512) and TLS + ACL
// Redis: with the right settings it fans a status event out and writes it back to the Dangdang
// sandbox; with a wrong Kafka password, a wrong CA, a wrong Redis password or unreachable
// sentinels (REDIS_MASTER_NAME honoured) it stays not ready, logs the variable to check, and
// writes no record and no Redis key.
func TestSecuredReadiness(t *testing.T) {
	servicetest.Each(t, true, func(t *testing.T, in servicetest.Infra, tc servicetest.Case) {
		sb := ddsandbox.New(demoShop)
		srv := httptest.NewServer(sb.Handler())
		defer srv.Close()
		topics := map[string]string{}
		for _, k := range []string{"TOPIC_STATUS", "TOPIC_DELIVERY", "TOPIC_LIFECYCLE", "TOPIC_REFUND", "TOPIC_DANGDANG_RESULTS", "TOPIC_STATUS_DLQ"} {
			topics[k] = testenv.Name(t, k)
		}
		prefix := testenv.Name(t, "op") + ":"
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		ev := event("dianwoda", "DD1719544796", schemas.StatusDelivered, time.Now())
		v, _ := json.Marshal(ev)
		servicetest.Seed(ctx, t, in.Kafka, slices.Collect(maps.Values(topics)), topics["TOPIC_STATUS"], kafka.Message{
			Key: []byte(schemas.Key(ev.Platform, ev.OrderID)), Value: v, Headers: []kafka.Header{{Key: schemas.HeaderCEID, Value: []byte(ev.EventID)}}})
		tc.Env = servicetest.With(tc.Env, map[string]string{"REDIS_KEY_PREFIX": prefix, "LOG_LEVEL": "info",
			"KAFKA_GROUP_ID": testenv.Name(t, "g"), "DANGDANG_API_URL": srv.URL + "/openapi/rest", "DANGDANG_BATCH_WINDOW": "100ms",
			// Without Redis the pending write-back cannot be recorded, so the stop at the end
			// waits out the whole grace (10 s by default); the stop is not what this test is about.
			"SHUTDOWN_GRACE": "2s"})
		tc.Env = servicetest.With(tc.Env, topics)
		outputs := []string{topics["TOPIC_DELIVERY"], topics["TOPIC_LIFECYCLE"], topics["TOPIC_REFUND"], topics["TOPIC_DANGDANG_RESULTS"], topics["TOPIC_STATUS_DLQ"]}
		if strings.HasPrefix(tc.Variable, "REDIS") {
			// The fan-out to topics needs no Redis and goes on (nothing is lost by it); what
			// needs Redis, the Dangdang write-back, must write nothing: no state, no result,
			// no dead letter, no call.
			outputs = outputs[3:]
			defer func() {
				if calls := sb.Calls(demoShop.AppKey); len(calls) != 0 {
					t.Errorf("%d Dangdang calls without Redis", len(calls))
				}
			}()
		}
		written := func(t *testing.T) int {
			n := in.RedisKeys(t, prefix)
			for _, o := range outputs {
				n += servicetest.Records(t, in.Kafka, o)
			}
			return n
		}
		done := func(t *testing.T) error {
			if d, r := servicetest.Records(t, in.Kafka, topics["TOPIC_DELIVERY"]), servicetest.Records(t, in.Kafka, topics["TOPIC_DANGDANG_RESULTS"]); d != 1 || r != 1 {
				return fmt.Errorf("%d delivery copies and %d Dangdang results, want 1 and 1", d, r)
			}
			return nil
		}
		in.Run(t, tc, startInProcess, 3*time.Second, written, done)
	})
}

// startInProcess runs the dispatcher as main would, on an ops port of its own.
var startInProcess = servicetest.InProcess(run)
