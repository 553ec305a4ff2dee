package shoplimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/dispatcher/internal/dangdang"
	"github.com/orderpipe/pipeline/dispatcher/internal/ddsandbox"
	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// TestThreeReplicasAgainstTheSandbox: three limiters (three replicas' worth, each with its own
// Redis connection and its own Dangdang client) call the Dangdang sandbox over HTTP on 127.0.0.1
// as fast as their shared limit lets them. The calls the sandbox records stay within the shop's
// configured rate (10/s, burst 1), in total and in every 1 s window of the sandbox's clock.
func TestThreeReplicasAgainstTheSandbox(t *testing.T) {
	addr := testenv.Redis(t)
	prefix := testenv.Name(t, "sl") + ":"
	cred := dangdang.Credentials{AppKey: "2100000000", AppSecret: "test_secret", Session: "SESSIONKEY"}
	sb := ddsandbox.New(ddsandbox.Shop{AppKey: cred.AppKey, Secret: cred.AppSecret, Session: cred.Session})
	srv := httptest.NewServer(sb.Handler())
	defer srv.Close()

	const (
		perSecond = 10
		run       = 3 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	for r := range 3 {
		l, _ := newLimiter(t, addr, prefix, map[string]Limit{"demo": {PerSecond: perSecond, Burst: 1}}, nil)
		client := &dangdang.Client{URL: srv.URL + "/openapi/rest", HTTP: &http.Client{Timeout: 5 * time.Second}}
		for g := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					if err := l.Wait(ctx, "demo"); err != nil {
						return
					}
					order := dangdang.OrderUpdate{OrderID: fmt.Sprintf("%d%d%06d", r+1, g+1, i), DistriStatus: 1, DistriTime: time.Now()}
					if _, err := client.Update(context.WithoutCancel(ctx), cred, []dangdang.OrderUpdate{order}); err != nil && !errors.Is(err, context.Canceled) {
						mu.Lock()
						failed = append(failed, err)
						mu.Unlock()
					}
				}
			}()
		}
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d calls failed, first: %v", len(failed), failed[0])
	}
	calls := sb.Calls(cred.AppKey)
	var at []time.Time
	for _, c := range calls {
		if c.Outcome != "ok" {
			t.Errorf("call %d: outcome %s", c.Seq, c.Outcome)
		}
		at = append(at, c.At)
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	max := 1 + perSecond*int(run/time.Second)
	t.Logf("the sandbox saw %d calls in %s from 3 replicas at %d/s burst 1 (at most %d; three unshared limiters would allow %d)", len(at), run, perSecond, max, 3*max)
	if len(at) > max+1 {
		t.Errorf("the sandbox saw %d calls in %s, over the shop's %d/s", len(at), run, perSecond)
	}
	if len(at) < max*7/10 {
		t.Errorf("the sandbox saw only %d calls in %s: the shared limit starves the shop", len(at), run)
	}
	for i := range at {
		j := sort.Search(len(at), func(k int) bool { return !at[k].Before(at[i].Add(time.Second)) })
		// rate + burst, +1 for a call in flight across the window's edge
		if n := j - i; n > perSecond+1+1 {
			t.Errorf("the sandbox saw %d calls within 1 s from %s: over %d/s", n, at[i].Format("15:04:05.000"), perSecond)
			break
		}
	}
}
