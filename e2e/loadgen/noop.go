package loadgen

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// NoopHandler is the HTTP ceiling of the benchmark: the same framework (echo) and the same routes
// as the ingress, answering 200 with the platform's success body and doing nothing else (it
// does not even read the body).
func NoopHandler() http.Handler {
	return references(func(success map[string]string) echo.HandlerFunc {
		return func(c echo.Context) error { return c.JSON(http.StatusOK, success) }
	})
}

// references is the echo both reference handlers serve: the ingress's two callback routes, each
// served by handle with its platform's success body.
func references(handle func(success map[string]string) echo.HandlerFunc) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/v1/callbacks/dianwoda", handle(map[string]string{"code": "success"}))
	e.POST("/v1/callbacks/eleme", handle(map[string]string{"message": "ok"}))
	return e
}

// AckWaitHandler is the floor of a handler that stores before it answers: echo and the same
// routes as NoopHandler, but each request reads its body and then waits for a batched
// acknowledgement before its success reply, as the ingress waits for the Producer's acks=all.
// Waiters gather as records do in the Producer: the first of a batch starts a linger, and the
// whole batch is released when the linger ends or once the bodies gathered reach lingerBytes
// (the Producer's LingerBytes; 0: no threshold), without Kafka. Beside NoopHandler it shows what
// the waiting itself costs net/http: the background read of every connection that a reply sent at
// once mostly escapes, and the parking and waking of the handler. It stops waiting when ctx ends.
func AckWaitHandler(ctx context.Context, linger time.Duration, lingerBytes int) http.Handler {
	a := &acker{linger: linger, lingerBytes: lingerBytes, kick: make(chan struct{}, 1), done: ctx.Done()}
	go a.run()
	e := references(func(success map[string]string) echo.HandlerFunc {
		return func(c echo.Context) error {
			n, err := io.Copy(io.Discard, c.Request().Body)
			if err != nil {
				return err
			}
			a.wait(int(n))
			return c.JSON(http.StatusOK, success)
		}
	})
	// Eleme's reachability probe, answered at once as the ingress does: what a script waits on.
	e.GET("/v1/callbacks/eleme", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"message": "ok"})
	})
	return e
}

type acker struct {
	linger      time.Duration
	lingerBytes int
	kick        chan struct{} // a batch has begun
	done        <-chan struct{}
	mu          sync.Mutex
	waiting     []chan struct{}
	bytes       int
	started     time.Time // when the batch waiting began
	released    uint64    // how many batches have been released
}

func (a *acker) wait(n int) {
	c := make(chan struct{})
	a.mu.Lock()
	a.waiting = append(a.waiting, c)
	a.bytes += n
	first := len(a.waiting) == 1
	if first {
		a.started = time.Now()
	}
	var full []chan struct{}
	if a.lingerBytes > 0 && a.bytes >= a.lingerBytes {
		full = a.takeLocked()
	}
	a.mu.Unlock()
	if full != nil {
		release(full) // c among them
	} else if first {
		select {
		case a.kick <- struct{}{}:
		default: // the loop has a kick pending already
		}
	}
	select {
	case <-c:
	case <-a.done:
	}
}

// takeLocked empties the batch for its release; a.mu is held.
func (a *acker) takeLocked() []chan struct{} {
	batch := a.waiting
	a.waiting, a.bytes = nil, 0
	a.released++
	return batch
}

func release(batch []chan struct{}) {
	for _, c := range batch {
		close(c)
	}
}

// run releases each batch a linger after it began, unless it was released full before that.
func (a *acker) run() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-a.done:
			return
		case <-a.kick:
		}
		a.mu.Lock()
		batch, deadline := a.released, a.started.Add(a.linger)
		a.mu.Unlock()
		t.Reset(time.Until(deadline))
		select {
		case <-a.done:
			return
		case <-t.C:
		}
		a.mu.Lock()
		var ready []chan struct{}
		if a.released == batch && len(a.waiting) > 0 {
			ready = a.takeLocked()
		}
		a.mu.Unlock()
		release(ready)
	}
}
