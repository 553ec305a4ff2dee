package chaos

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// The workload spreads its callbacks over every ingress instance, and when one is down (the
// connection is refused) it sends the same request to another at once, as a load balancer does:
// nothing waits for a retry backoff and nothing is given up.
func TestDriveSpreadsAndFailsOver(t *testing.T) {
	var a, b atomic.Int64
	ok := func(n *atomic.Int64) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1); w.WriteHeader(http.StatusOK) })
	}
	sa, sb := httptest.NewServer(ok(&a)), httptest.NewServer(ok(&b))
	defer sa.Close()
	defer sb.Close()
	// A port where nothing listens: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()

	drive := func(urls ...string) *Ledger {
		return Drive(context.Background(), Config{IngressURLs: urls, Rate: 200, Duration: 300 * time.Millisecond, Drain: 10 * time.Second,
			Workers: 4, Mix: Mix{}, Signer: Signer{DianwodaSecret: "s", ElemeAppID: "1", ElemeSecret: "e"}})
	}
	l := drive(sa.URL, sb.URL)
	if l.Acked.Load() == 0 || a.Load() == 0 || b.Load() == 0 {
		t.Fatalf("both instances must get requests: acked %d, a %d, b %d", l.Acked.Load(), a.Load(), b.Load())
	}
	if d := a.Load() - b.Load(); d > a.Load()/2 || -d > b.Load()/2 {
		t.Errorf("round robin should spread about evenly: a %d, b %d", a.Load(), b.Load())
	}

	a.Store(0)
	l = drive(down, sa.URL)
	if l.GaveUp.Load() != 0 || l.Refused.Load() != 0 {
		t.Errorf("a refused connection must go to the other instance at once: gave up %d, refused replies %d", l.GaveUp.Load(), l.Refused.Load())
	}
	if l.Acked.Load() == 0 || a.Load() != l.Sent.Load() {
		t.Errorf("every request must reach the live instance: acked %d, sent %d, live got %d", l.Acked.Load(), l.Sent.Load(), a.Load())
	}
	if l.NetErrors.Load() == 0 {
		t.Errorf("the down instance was never tried (net errors 0)")
	}
}
