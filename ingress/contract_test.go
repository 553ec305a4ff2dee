package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/ingress/internal/apicheck"
	"github.com/orderpipe/pipeline/ingress/internal/dianwoda"
	"github.com/orderpipe/pipeline/ingress/internal/eleme"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// TestRunningIngressRepliesMatchOpenAPI sends real callbacks, good and bad, to the ingress as
// main runs it (real Kafka) and validates every request's reply against openapi.yaml with
// kin-openapi's openapi3filter.
func TestRunningIngressRepliesMatchOpenAPI(t *testing.T) {
	checker, err := apicheck.Load()
	if err != nil {
		t.Fatal(err)
	}
	brokers := testenv.Kafka(t)
	p := start(t, map[string]string{"KAFKA_BROKERS": strings.Join(brokers, ","), "TOPIC_RAW": testenv.Name(t, "raw"), "INGRESS_MAX_BODY": "4096"})
	p.waitReady(t, 200, 60*time.Second)

	dwdBody := `{"content":{"order_original_id":"C1","order_status":"created","time_status_update":1429861697905},"deliver_times":1,"msg_id":"m-c1","pub_time":1545188246307}`
	dwdQuery := func(body string) string {
		return "type=" + dianwoda.TypeStatusUpdate + "&timestamp=1&nonce=2&sign=" + dianwoda.Sign("2", "1", dianwoda.TypeStatusUpdate, []byte(body), dwdSecret)
	}
	unsigned := fmt.Sprintf(`{"appId":%s,"requestId":"r","type":12,"message":%q,"shopId":1,"timestamp":1}`, elmApp, `{"orderId":"C2","state":"valid"}`)
	sig, _ := eleme.SignBody([]byte(unsigned), elmSecret)
	elmBody := unsigned[:len(unsigned)-1] + `,"signature":"` + sig + `"}`
	big := strings.Repeat(" ", 5000)

	type exchange struct {
		method, path, body string
		want               int
	}
	for _, x := range []exchange{
		{"POST", "/v1/callbacks/dianwoda?" + dwdQuery(dwdBody), dwdBody, 200},
		{"POST", "/v1/callbacks/dianwoda?" + dwdQuery(dwdBody), dwdBody + " ", 401},
		{"POST", "/v1/callbacks/dianwoda?" + dwdQuery("[]"), "[]", 400},
		{"POST", "/v1/callbacks/dianwoda?" + dwdQuery(big), big, 413},
		{"POST", "/v1/callbacks/eleme", elmBody, 200},
		{"POST", "/v1/callbacks/eleme", "", 200},
		{"POST", "/v1/callbacks/eleme", strings.Replace(elmBody, sig, "00", 1), 401},
		{"POST", "/v1/callbacks/eleme", "[]", 400},
		{"GET", "/v1/callbacks/eleme", "", 200},
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
	} {
		req, err := http.NewRequest(x.method, p.httpURL+x.path, strings.NewReader(x.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		reply, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != x.want {
			t.Errorf("%s %s: %d %s, want %d", x.method, x.path, res.StatusCode, reply, x.want)
		}
		if err := checker.Check(req, []byte(x.body), res.StatusCode, res.Header, reply); err != nil {
			t.Error(err)
		}
	}
}

// TestMetricsOnlyOnOpsPort: the public callback port does not serve /metrics (the metrics name
// internal topics, outcomes and rates); the ops port does.
func TestMetricsOnlyOnOpsPort(t *testing.T) {
	p := start(t, map[string]string{"KAFKA_BROKERS": "127.0.0.1:1"})
	res, err := client.Get(p.opsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Contains(body, []byte("ingress_requests_total")) {
		t.Errorf("ops port /metrics: %d, want 200 with the ingress metrics", res.StatusCode)
	}
	res, err = client.Get(p.httpURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || bytes.Contains(body, []byte("ingress_requests_total")) {
		t.Errorf("callback port /metrics: %d (%d bytes), want 404 without metrics", res.StatusCode, len(body))
	}
}
