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
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/v1/callbacks/dianwoda", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"code": "success"})
	})
	e.POST("/v1/callbacks/eleme", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"message": "ok"})
	})
	return e
}

// AckWaitHandler is the floor of a handler that stores before it answers: echo and the same
// routes as NoopHandler, but each request reads its body and then waits for a batched
// acknowledgement before its success reply, as the ingress waits for the Producer's acks=all.
// Waiters gather as records do in the Producer: the first of a batch starts a linger, and the
// whole batch is released when the linger ends or once the bodies gathered reach lingerBytes
// (the Producer's LingerBytes), without Kafka. Beside NoopHandler it shows what the waiting itself
// costs net/http: the background read of every connection that a reply sent at once mostly
// escapes, and the parking and waking of the handler. It stops waiting when ctx ends.
func AckWaitHandler(ctx context.Context, linger time.Duration, lingerBytes int) http.Handler {
	a := &acker{linger: linger, lingerBytes: lingerBytes, kick: make(chan struct{}, 1), full: make(chan struct{}, 1), done: ctx.Done()}
	go a.run()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	reply := func(body map[string]string) echo.HandlerFunc {
		return func(c echo.Context) error {
			n, err := io.Copy(io.Discard, c.Request().Body)
			if err != nil {
				return err
			}
			a.wait(int(n))
			return c.JSON(http.StatusOK, body)
		}
	}
	e.POST("/v1/callbacks/dianwoda", reply(map[string]string{"code": "success"}))
	e.POST("/v1/callbacks/eleme", reply(map[string]string{"message": "ok"}))
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
	full        chan struct{} // the batch has reached lingerBytes
	done        <-chan struct{}
	mu          sync.Mutex
	waiting     []chan struct{}
	bytes       int
	fullSent    bool
}

func (a *acker) wait(n int) {
	c := make(chan struct{})
	a.mu.Lock()
	a.waiting = append(a.waiting, c)
	a.bytes += n
	first := len(a.waiting) == 1
	full := a.lingerBytes > 0 && a.bytes >= a.lingerBytes && !a.fullSent
	a.fullSent = a.fullSent || full
	a.mu.Unlock()
	if first {
		signal(a.kick)
	}
	if full {
		signal(a.full)
	}
	select {
	case <-c:
	case <-a.done:
	}
}

// signal leaves a token in c unless one is pending already.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (a *acker) run() {
	t := time.NewTimer(0)
	<-t.C
	for {
		select {
		case <-a.done:
			return
		case <-a.kick:
		}
		t.Reset(a.linger)
		select {
		case <-a.done:
			return
		case <-t.C:
		case <-a.full:
			t.Stop()
		}
		a.mu.Lock()
		batch := a.waiting
		a.waiting, a.bytes, a.fullSent = nil, 0, false
		a.mu.Unlock()
		select { // a full signal of the batch just released, sent after it was taken: drop it
		case <-a.full:
		default:
		}
		for _, c := range batch {
			close(c)
		}
	}
}
