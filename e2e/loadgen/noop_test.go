package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func postEleme(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Post(url+"/v1/callbacks/eleme", "application/json", strings.NewReader(`{"appId":1}`))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestAckWaitHandlerAnswersAfterTheLinger: a request alone starts its own batch, so its reply
// waits the whole linger; one batch after another is released (no kick is lost between them),
// and many at once are all answered.
func TestAckWaitHandlerAnswersAfterTheLinger(t *testing.T) {
	const linger = 60 * time.Millisecond
	srv := httptest.NewServer(AckWaitHandler(t.Context(), linger, 0))
	defer srv.Close()
	for i := range 3 {
		start := time.Now()
		code, body := postEleme(t, srv.URL)
		if took := time.Since(start); took < linger {
			t.Errorf("request %d answered after %v, before the %v linger", i, took, linger)
		}
		if code != http.StatusOK || body != `{"message":"ok"}` {
			t.Errorf("request %d: %d %s", i, code, body)
		}
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if code, body := postEleme(t, srv.URL); code != http.StatusOK || body != `{"message":"ok"}` {
				t.Errorf("%d %s", code, body)
			}
		})
	}
	wg.Wait()
}

// TestAckWaitHandlerStopsWaitingWithItsContext: a request waiting for a batch that would take an
// hour is answered once the handler's context ends.
func TestAckWaitHandlerStopsWaitingWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv := httptest.NewServer(AckWaitHandler(ctx, time.Hour, 0))
	defer srv.Close()
	done := make(chan int, 1)
	go func() { code, _ := postEleme(t, srv.URL); done <- code }()
	select {
	case code := <-done:
		t.Fatalf("answered %d before the linger or the context ended", code)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	select {
	case code := <-done:
		if code != http.StatusOK {
			t.Errorf("answered %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting 10 s after the context ended")
	}
}

// TestAckWaitHandlerReleasesAFullBatchEarly: with an hour's linger, a batch is released once its
// bodies reach lingerBytes, and so is the next one.
func TestAckWaitHandlerReleasesAFullBatchEarly(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv := httptest.NewServer(AckWaitHandler(ctx, time.Hour, 2*len(`{"appId":1}`)))
	defer srv.Close()
	defer cancel() // first: a failed test's waiting requests end, so Close does not wait an hour
	for batch := range 2 {
		done := make(chan int, 2)
		for range 2 {
			go func() { code, _ := postEleme(t, srv.URL); done <- code }()
		}
		for range 2 {
			select {
			case code := <-done:
				if code != http.StatusOK {
					t.Errorf("batch %d: answered %d", batch, code)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("batch %d: two bodies of lingerBytes together still waiting after 10 s", batch)
			}
		}
	}
}
