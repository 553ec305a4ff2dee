package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/orderpipe/pipeline/ingress/internal/dianwoda"
	"github.com/orderpipe/pipeline/ingress/internal/eleme"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

const (
	dwdSecret = "dwd-secret"
	elmApp    = "777"
	elmSecret = "elm-secret"
)

type proc struct {
	httpURL, opsURL string
	cancel          context.CancelFunc
	done            chan error
	logs            *testenv.Buffer
}

// start runs the ingress in-process on ports of its own, as main would.
func start(t *testing.T, env map[string]string) *proc {
	t.Helper()
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ol, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		"DIANWODA_SECRETS":    dwdSecret,
		"ELEME_SECRETS":       elmApp + "=" + elmSecret,
		"TOPIC_PARTITIONS":    "3",
		"INGRESS_DRAIN_DELAY": "0s",
		"HTTP_ADDR":           hl.Addr().String(),
		"OPS_ADDR":            ol.Addr().String(),
	}
	for k, v := range env {
		base[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{httpURL: "http://" + hl.Addr().String(), opsURL: "http://" + ol.Addr().String(), cancel: cancel, done: make(chan error, 1), logs: &testenv.Buffer{}}
	go func() {
		p.done <- runWith(ctx, func(k string) string { return base[k] }, p.logs, listeners{http: hl, ops: ol})
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func get(url string) int {
	res, err := http.Get(url)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func (p *proc) waitReady(t *testing.T, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if get(p.opsURL+"/readyz") == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("/readyz did not answer %d within %s; log:\n%s", want, within, p.logs.String())
}

var client = &http.Client{Timeout: 20 * time.Second}

// postDianwoda sends a signed status update for order id and returns the status (0: no reply).
func (p *proc) postDianwoda(id string) int {
	body := `{"content":{"order_original_id":"` + id + `","order_status":"created","time_status_update":1429861697905},"deliver_times":1,"msg_id":"m-` + id + `","pub_time":1545188246307}`
	q := "type=" + dianwoda.TypeStatusUpdate + "&timestamp=1&nonce=2&sign=" + dianwoda.Sign("2", "1", dianwoda.TypeStatusUpdate, []byte(body), dwdSecret)
	res, err := client.Post(p.httpURL+"/v1/callbacks/dianwoda?"+q, "application/json", strings.NewReader(body))
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func (p *proc) postEleme(id string) int {
	unsigned := fmt.Sprintf(`{"appId":%s,"requestId":"r","type":12,"message":%q,"shopId":1,"timestamp":1}`, elmApp, `{"orderId":"`+id+`","state":"valid"}`)
	sig, _ := eleme.SignBody([]byte(unsigned), elmSecret)
	body := unsigned[:len(unsigned)-1] + `,"signature":"` + sig + `"}`
	res, err := client.Post(p.httpURL+"/v1/callbacks/eleme", "application/json", strings.NewReader(body))
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// keysOnTopic reads every record of topic (all partitions) and returns the keys.
func keysOnTopic(t *testing.T, brokers []string, topic string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, pt := range parts {
		lc, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, pt.ID)
		if err != nil {
			t.Fatal(err)
		}
		last, err := lc.ReadLastOffset()
		lc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: pt.ID, MaxWait: 100 * time.Millisecond})
		for n := int64(0); n < last; n++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("partition %d: read %d of %d: %v", pt.ID, n, last, err)
			}
			var env schemas.RawEnvelope
			if err := json.Unmarshal(m.Value, &env); err != nil {
				t.Fatalf("not an envelope: %v", err)
			}
			keys[string(m.Key)]++
		}
		r.Close()
	}
	return keys
}

// TestShutdownKeepsEverySuccess: callbacks arrive while the ingress is told to stop. Every one
// that got a 200 is on the topic afterwards (in-flight requests finish, the writer flushes), the
// others were refused, and run returns cleanly without leaking goroutines.
func TestShutdownKeepsEverySuccess(t *testing.T) {
	brokers := testenv.Kafka(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	topic := testenv.Name(t, "raw")
	p := start(t, map[string]string{"KAFKA_BROKERS": strings.Join(brokers, ","), "TOPIC_RAW": topic})
	p.waitReady(t, 200, 30*time.Second)
	if got := get(p.httpURL + "/readyz"); got != 200 {
		t.Errorf("callback-port /readyz mirror: %d", got)
	}

	var mu sync.Mutex
	ok := map[string]bool{}
	var wg sync.WaitGroup
	var sent sync.WaitGroup
	sent.Add(40)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				id := fmt.Sprintf("o-%d-%d", w, i)
				var status int
				if i%2 == 0 {
					status = p.postDianwoda(id)
				} else {
					status = p.postEleme(id)
				}
				if i < 5 {
					sent.Done()
				}
				if status == 200 {
					mu.Lock()
					if i%2 == 0 {
						ok["dianwoda:"+id] = true
					} else {
						ok["eleme:"+id] = true
					}
					mu.Unlock()
				}
			}
		}()
	}
	sent.Wait() // some callbacks are through; stop while others are in flight
	p.stop(t)
	wg.Wait()
	client.CloseIdleConnections()

	if len(ok) < 40 {
		t.Fatalf("only %d successes before the stop", len(ok))
	}
	keys := keysOnTopic(t, brokers, topic)
	for k := range ok {
		if keys[k] == 0 {
			t.Errorf("%s was answered 200 but is not on the topic", k)
		}
	}
	t.Logf("%d answered 200 of 240; %d records on the topic", len(ok), len(keys))
	if !strings.Contains(p.logs.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", p.logs.String())
	}
}

// TestBrokerOutage runs the ingress against a broker of the test's own: while the broker is
// stopped callbacks get 503 and readiness fails; when it is back, callbacks succeed again without
// restarting the ingress, and every 200 is on the topic.
func TestBrokerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker of its own (~7 s); skipped with -short")
	}
	b := testenv.OwnKafka(t)
	topic := "callbacks.raw.v1"
	p := start(t, map[string]string{
		"KAFKA_BROKERS":               strings.Join(b.Brokers, ","),
		"INGRESS_WRITE_TIMEOUT":       "2s",
		"INGRESS_HTTP_WRITE_TIMEOUT":  "5s",
		"INGRESS_KAFKA_PING_INTERVAL": "200ms",
	})
	p.waitReady(t, 200, 60*time.Second)
	ok := map[string]bool{}
	for i := range 5 {
		id := fmt.Sprintf("before-%d", i)
		if got := p.postDianwoda(id); got != 200 {
			t.Fatalf("before the outage: %d", got)
		}
		ok["dianwoda:"+id] = true
	}

	b.Stop()
	for i := range 5 {
		start := time.Now()
		got := p.postEleme(fmt.Sprintf("during-%d", i))
		if got != 503 {
			t.Errorf("during the outage: %d, want 503", got)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("503 took %s (write timeout 2s)", d)
		}
	}
	// Readiness is the health loop's, not the failed writes': several ping intervals after the
	// last write it must still say 503 (a ping answered from kafka-go's cached metadata said
	// reachable, and a check right after the writes only passed while it had not pinged yet).
	time.Sleep(time.Second)
	p.waitReady(t, 503, 10*time.Second)

	b.Restart()
	p.waitReady(t, 200, 60*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < 5; {
		id := fmt.Sprintf("after-%d", i)
		got := p.postEleme(id)
		if got == 200 {
			ok["eleme:"+id] = true
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the broker came back: still %d; log:\n%s", got, p.logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	keys := keysOnTopic(t, b.Brokers, topic)
	for k := range ok {
		if keys[k] == 0 {
			t.Errorf("%s was answered 200 but is not on the topic", k)
		}
	}
}

// TestConfigErrorsListed: a wrong configuration stops the start with every problem named.
func TestConfigErrorsListed(t *testing.T) {
	err := run(context.Background(), func(k string) string {
		return map[string]string{"HTTP_ADDR": "nope", "INGRESS_MAX_BODY": "-1"}[k]
	}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "HTTP_ADDR") || !strings.Contains(err.Error(), "INGRESS_MAX_BODY") {
		t.Fatalf("run = %v", err)
	}
}

// TestSlowHeadersCut: a client that trickles its headers (slowloris) is disconnected after
// INGRESS_READ_HEADER_TIMEOUT instead of holding a connection open.
func TestSlowHeadersCut(t *testing.T) {
	brokers := testenv.Kafka(t)
	p := start(t, map[string]string{"KAFKA_BROKERS": strings.Join(brokers, ","), "TOPIC_RAW": testenv.Name(t, "raw"), "INGRESS_READ_HEADER_TIMEOUT": "300ms"})
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.httpURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /v1/callbacks/eleme HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(conn) // returns when the server closes the connection
	if err != nil {
		t.Fatalf("read: %v (server did not close the connection)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("connection held %s", d)
	}
}

// TestDrainingNotReady: on stop, readiness fails first ("draining") while callbacks are still
// answered for INGRESS_DRAIN_DELAY, so a load balancer moves away before the listener closes.
func TestDrainingNotReady(t *testing.T) {
	brokers := testenv.Kafka(t)
	p := start(t, map[string]string{"KAFKA_BROKERS": strings.Join(brokers, ","), "TOPIC_RAW": testenv.Name(t, "raw"), "INGRESS_DRAIN_DELAY": "1500ms"})
	p.waitReady(t, 200, 30*time.Second)
	p.cancel()
	p.waitReady(t, 503, time.Second)
	if got := p.postDianwoda("during-drain"); got != 200 {
		t.Errorf("callback while draining: %d, want 200", got)
	}
	select {
	case err := <-p.done:
		p.cancel = nil
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return")
	}
	if !strings.Contains(p.logs.String(), `"msg":"draining"`) {
		t.Error("no draining log line")
	}
}
