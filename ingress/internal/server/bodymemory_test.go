package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// holdingPublisher keeps every record until release is closed, as a Kafka write that takes its
// time would, and counts how many it holds at once.
type holdingPublisher struct {
	release    chan struct{}
	held, peak atomic.Int64
	mu         sync.Mutex
	kept       []kafka.Message // alive until the write "completes", as in a real writer's batch
}

func (p *holdingPublisher) Publish(ctx context.Context, m kafka.Message) error {
	p.mu.Lock()
	p.kept = append(p.kept, m)
	p.mu.Unlock()
	n := p.held.Add(1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	<-p.release
	p.held.Add(-1)
	p.mu.Lock()
	p.kept = nil
	p.mu.Unlock()
	return nil
}

// TestBodyMemoryBounded: 40 concurrent 1 MiB uploads against an 8 MiB body budget. Bodies are
// read only within the budget, however many requests are in flight and whatever the write
// concurrency bound; beyond it the ingress answers 503 in the platform's shape, discarding the
// body as it arrives: every caller gets a reply, none a reset connection. Heap growth stays near the budget instead of 60 bodies (and their envelopes).
func TestBodyMemoryBounded(t *testing.T) {
	const (
		maxBody = 1 << 20
		budget  = 8 << 20
		uploads = 40
	)
	pub := &holdingPublisher{release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(pub.release) }) }
	srv := New(Config{
		MaxBody:         maxBody,
		MaxBodyMemory:   budget,
		DianwodaSecrets: []string{dwdSecret},
		Publisher:       pub,
		Log:             zap.NewNop(),
		Registry:        prometheus.NewRegistry(),
	})
	ts := httptest.NewServer(srv.Handler()) // 127.0.0.1
	defer ts.Close()
	defer release() // before ts.Close: held handlers must end, also when the test fails early

	body := `{"content":{"order_original_id":"BIG","order_status":"created","detail":"` + strings.Repeat("x", maxBody-200) + `"},"msg_id":"m"}`
	q := dwdQuery(body, dwdSecret).Encode()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	type reply struct {
		status int
		body   string
	}
	replies := make(chan reply, uploads)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxConnsPerHost: uploads, MaxIdleConnsPerHost: uploads}}
	for range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := client.Post(ts.URL+PathDianwoda+"?"+q, "application/json", strings.NewReader(body))
			if err != nil {
				replies <- reply{status: 0, body: err.Error()}
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			replies <- reply{res.StatusCode, string(b)}
		}()
	}
	// Wait until every upload was either refused or is held by the publisher.
	refused := 0
	deadline := time.After(90 * time.Second)
	for refused+int(pub.held.Load()) < uploads {
		select {
		case r := <-replies:
			if r.status != http.StatusServiceUnavailable {
				t.Errorf("reply %d %s before any write finished, want 503", r.status, r.body)
			} else {
				if r.body != `{"code":"api.unknown_error","message":"too busy, retry later"}`+"\n" {
					t.Errorf("503 body %q is not Dianwoda's busy reply", r.body)
				}
			}
			refused++
		case <-deadline:
			t.Fatalf("after 90s: %d refused, %d held, of %d", refused, pub.held.Load(), uploads)
		case <-time.After(10 * time.Millisecond):
		}
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	grown := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	held := pub.peak.Load()
	release()
	wg.Wait()
	close(replies)
	for r := range replies {
		if r.status != 200 {
			t.Errorf("a held upload was answered %d %s, want 200", r.status, r.body)
		}
	}

	t.Logf("%d uploads of 1 MiB: %d bodies read and held at most, %d refused; heap grew %.1f MiB", uploads, held, refused, float64(grown)/(1<<20))
	if held > budget/maxBody {
		t.Errorf("%d bodies of 1 MiB were read at once, over the %d MiB budget", held, budget>>20)
	}
	if refused == 0 {
		t.Error("nothing was refused")
	}
	// Each held request keeps ~1.5 times its body (the envelope, with the body in base64); 40
	// held would be ~60 MiB.
	if limit := int64(budget)*3 + 8<<20; grown > limit {
		t.Errorf("heap grew %d MiB with uploads in flight, want under %d MiB", grown>>20, limit>>20)
	}
}
