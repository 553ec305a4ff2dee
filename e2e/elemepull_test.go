package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/e2e/callbacks"
	"github.com/orderpipe/pipeline/e2e/stack"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

const testElemeAppKey = "e2e-eleme-app-key"

// elemeRig is the Eleme OpenAPI sandbox of a test and a way to start compensation pollers
// against it, on the pipeline's topics and Redis.
type elemeRig struct {
	p   *pipeline
	url string
	n   int
}

func startElemeSandbox(t *testing.T, p *pipeline) *elemeRig {
	t.Helper()
	addr := freeAddr(t)
	r := &elemeRig{p: p, url: "http://" + addr}
	s := &stack.Service{Name: "elemesandbox", Bin: filepath.Join(binDir, "elemesandbox"),
		Env:      []string{"SANDBOX_ADDR=" + addr, "ELEME_SANDBOX_APPS=" + testElemeAppID + "=" + testElemeAppKey + ":" + testElemeSecret},
		ReadyURL: r.url + "/sandbox/stats", Output: p.out("elemesandbox")}
	p.start(s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

// poller describes an elemepull process (not started); prefix "" shares the pipeline's Redis
// prefix (and so the lease).
func (r *elemeRig) poller(prefix string, extra ...string) *stack.Service {
	ops := freeAddr(r.p.t)
	r.n++
	env := append([]string{"OPS_ADDR=" + ops, "ELEME_API_URL=" + r.url, "ELEME_SECRETS=" + testElemeAppID + "=" + testElemeSecret,
		"ELEME_APP_KEYS=" + testElemeAppID + "=" + testElemeAppKey, "ELEME_PULL_INTERVAL=500ms", "ELEME_PULL_LEASE_TTL=3s",
		"ELEME_PULL_BACKOFF_MIN=200ms", "ELEME_PULL_BACKOFF_MAX=1s"}, r.p.common...)
	if prefix != "" {
		env = append(env, "REDIS_KEY_PREFIX="+prefix)
	}
	env = append(env, extra...)
	name := fmt.Sprintf("elemepull-%d", r.n)
	return &stack.Service{Name: name, Bin: filepath.Join(binDir, "elemepull"), Env: env,
		ReadyURL: "http://" + ops + "/readyz", Output: r.p.out(name)}
}

func (r *elemeRig) startPoller(t *testing.T, s *stack.Service) {
	t.Helper()
	r.p.start(s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

func (r *elemeRig) admin(t *testing.T, method, path string, body any, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.url+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *elemeRig) hold(t *testing.T, bodies ...[]byte) {
	t.Helper()
	msgs := make([]json.RawMessage, len(bodies))
	for i, b := range bodies {
		msgs[i] = b
	}
	r.admin(t, http.MethodPost, "/sandbox/held", map[string]any{"app_id": testElemeAppID, "messages": msgs}, nil)
}

// holdBody is chaos.Config.ElemeHold: the sandbox keeps one push Eleme could not deliver.
func (r *elemeRig) holdBody(ctx context.Context, body []byte) error {
	b, _ := json.Marshal(map[string]any{"app_id": testElemeAppID, "messages": []json.RawMessage{body}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url+"/sandbox/held", bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("hold: HTTP %d", resp.StatusCode)
	}
	return nil
}

func (r *elemeRig) held(t *testing.T) int {
	var h []json.RawMessage
	r.admin(t, http.MethodGet, "/sandbox/held", nil, &h)
	return len(h)
}

func (r *elemeRig) waitConfirmed(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for r.held(t) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still %d messages held after %s", r.held(t), d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// elemeTransitions returns the Eleme transitions of n distinct orders (type 12 "valid", a
// delivery step 55 "delivering", and the order itself, 217), as push bodies.
func elemeTransitions(run string, n int) []callbacks.Eleme {
	var out []callbacks.Eleme
	base := time.Now().Add(-time.Minute).Unix() // the normalizer refuses implausibly old times
	for i := range n {
		order := fmt.Sprintf("51%s%04d", run, i)
		out = append(out,
			callbacks.Eleme{AppID: testElemeAppID, RequestID: fmt.Sprintf("a%s%d", run, i), Type: 12, ShopID: "968861", UserID: "62864532",
				Timestamp: (base+int64(i))*1000 + 123,
				Message:   fmt.Sprintf(`{"orderId":"%s","state":"valid","shopId":968861,"updateTime":%d,"role":3}`, order, base+int64(i))},
			callbacks.Eleme{AppID: testElemeAppID, RequestID: fmt.Sprintf("b%s%d", run, i), Type: 55, ShopID: "968861", UserID: "62864532",
				Timestamp: (base+30+int64(i))*1000 + 123,
				Message:   fmt.Sprintf(`{"orderId":"%s","shopId":968861,"state":"delivering","subState":"noSubstate","name":"张三","phone":"13600000000","updateAt":%d}`, order, (base+30)*1000+int64(i))},
			// The order itself (217, OOrder): named by id, not orderId, and with no time of its
			// own here, so only the push's timestamp dates it. Its event id must not depend on
			// that timestamp (issue 12 defects 4 and 5, fixed on the norm branch).
			callbacks.Eleme{AppID: testElemeAppID, RequestID: fmt.Sprintf("c%s%d", run, i), Type: 217, ShopID: "968861", UserID: "62864532",
				Timestamp: (base-30+int64(i))*1000 + 123,
				Message:   fmt.Sprintf(`{"id":"%s","shopId":968861,"status":"unprocessed"}`, order)},
		)
	}
	return out
}

func bodies(ts []callbacks.Eleme) [][]byte {
	out := make([][]byte, len(ts))
	for i, e := range ts {
		out[i] = e.Body(testElemeSecret)
	}
	return out
}

// pushVia sends a push to the ingress until it answers 200.
func pushVia(t *testing.T, p *pipeline, body []byte) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Post(p.ingressURL+"/v1/callbacks/eleme", "application/json", bytes.NewReader(body))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingress did not accept the push: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// statusEvents reads the status topic until want events of the run's orders arrived, then
// keeps reading until nothing new came for quiet, and returns the events by event_id.
func statusEvents(t *testing.T, p *pipeline, run string, want int, quiet time.Duration) map[string]int {
	t.Helper()
	rd := kafkaio.NewReader(kafkaio.ReaderConfig{Brokers: p.brokers, GroupID: testenv.Name(t, "reader"), Topic: p.topics.Status})
	defer rd.Close()
	byID := map[string]int{}
	n := 0
	deadline := time.Now().Add(90 * time.Second)
	for {
		wait := quiet
		if n < want {
			wait = time.Until(deadline)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		m, err := rd.FetchMessage(ctx)
		cancel()
		if err != nil {
			if n < want {
				t.Fatalf("status topic: %d of %d events: %v", n, want, err)
			}
			return byID
		}
		var ev schemas.StatusEvent
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Platform == schemas.PlatformEleme && strings.HasPrefix(ev.OrderID, "51"+run) {
			byID[ev.EventID]++
			n++
		}
	}
}

func checkOnce(t *testing.T, byID map[string]int, want int) {
	t.Helper()
	if len(byID) != want {
		t.Errorf("%d distinct events, want %d (one per transition)", len(byID), want)
	}
	for id, n := range byID {
		if n != 1 {
			t.Errorf("event %s is on the status topic %d times, want once", id, n)
		}
	}
}

func countRaw(t *testing.T, p *pipeline, want int) []kafka.Message {
	return consume(t, kafkaio.Plaintext(p.brokers...), p.topics.Raw, want, func(m kafka.Message) bool {
		var env schemas.RawEnvelope
		return json.Unmarshal(m.Value, &env) == nil && env.Source == schemas.SourcePull
	})
}

// TestElemePullHeldBecomeEvents: pushes Eleme failed to deliver, held by the sandbox, end as
// unified events on orders.status.v1, one per transition, and are confirmed.
func TestElemePullHeldBecomeEvents(t *testing.T) {
	p := startPipeline(t)
	r := startElemeSandbox(t, p)
	ts := elemeTransitions("1", 5)
	r.hold(t, bodies(ts)...)
	r.startPoller(t, r.poller(""))
	r.waitConfirmed(t, 30*time.Second)
	checkOnce(t, statusEvents(t, p, "1", len(ts), 2*time.Second), len(ts))
}

// TestElemePushAndPullOneEvent: the same transitions arrive by push (through the ingress) and
// by pull (held by the sandbox, pulled by the poller); each yields one event. The pulled copy
// carries a later push timestamp, as a re-delivery would: the event id must not depend on it.
func TestElemePushAndPullOneEvent(t *testing.T) {
	p := startPipeline(t)
	r := startElemeSandbox(t, p)
	ts := elemeTransitions("2", 4)
	for _, b := range bodies(ts) {
		pushVia(t, p, b)
	}
	pulled := make([]callbacks.Eleme, len(ts))
	for i, e := range ts {
		e.Timestamp += 60_000
		pulled[i] = e
	}
	r.hold(t, bodies(pulled)...)
	r.startPoller(t, r.poller(""))
	r.waitConfirmed(t, 30*time.Second)
	countRaw(t, p, len(ts))
	checkOnce(t, statusEvents(t, p, "2", len(ts), 3*time.Second), len(ts))
}

// TestElemeTwoPollersAtOnce runs two pollers that do not share a lease (different Redis key
// prefixes: the worst case, e.g. a misconfigured second deployment): both pull and write the same
// messages, and still each transition is one event.
func TestElemeTwoPollersAtOnce(t *testing.T) {
	p := startPipeline(t)
	r := startElemeSandbox(t, p)
	// Confirms fail for a while, so both pollers surely pull (and write) the same messages.
	r.admin(t, http.MethodPost, "/sandbox/faults", map[string]any{"kind": "confirm_fail", "times": 4}, nil)
	ts := elemeTransitions("3", 5)
	r.hold(t, bodies(ts)...)
	a, b := r.poller(testenv.Name(t, "lease-a")+":"), r.poller(testenv.Name(t, "lease-b")+":")
	r.startPoller(t, a)
	r.startPoller(t, b)
	r.waitConfirmed(t, 30*time.Second)
	countRaw(t, p, 2*len(ts)) // at least two copies of each
	checkOnce(t, statusEvents(t, p, "3", len(ts), 3*time.Second), len(ts))
}

// TestElemePullCrashBetweenWriteAndConfirm kills the poller (SIGKILL) after its write was
// acknowledged and while its confirm hangs; the restarted poller pulls and writes the same
// messages again and confirms them; each transition is still one event.
func TestElemePullCrashBetweenWriteAndConfirm(t *testing.T) {
	p := startPipeline(t)
	r := startElemeSandbox(t, p)
	r.admin(t, http.MethodPost, "/sandbox/faults", map[string]any{"kind": "timeout", "action": "eleme.msgNew.confirmPullMsg", "delay_ms": 120000}, nil)
	ts := elemeTransitions("4", 5)
	r.hold(t, bodies(ts)...)
	s := r.poller("", "ELEME_API_TIMEOUT=120s")
	r.startPoller(t, s)
	countRaw(t, p, len(ts)) // written and acknowledged; the confirm hangs
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if n := r.held(t); n != len(ts) {
		t.Fatalf("%d held after the crash, want %d (nothing was confirmed)", n, len(ts))
	}
	r.admin(t, http.MethodDelete, "/sandbox/faults", nil, nil)
	r.startPoller(t, s)
	r.waitConfirmed(t, 30*time.Second)
	countRaw(t, p, 2*len(ts))
	checkOnce(t, statusEvents(t, p, "4", len(ts), 3*time.Second), len(ts))
}
