package server

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderpipe/pipeline/ingress/internal/publish"
)

// shedding is the rig's real publisher, told by the test when its writes are at their bound.
type shedding struct {
	*publish.Publisher
	busy atomic.Bool
}

func (s *shedding) Admit() error {
	if s.busy.Load() {
		return publish.ErrBusy
	}
	return s.Publisher.Admit()
}

// TestShedBeforeReading: while the publisher would refuse a write (Admit), a callback is
// answered 503 in its platform's shape before it is read or verified: forged ones too, so no
// signature is checked and nothing is written. Those refusals are counted one by one but
// access-logged sampled, as accepted callbacks are: a retry storm is thousands a second. When
// the publisher admits again, callbacks are taken as before.
func TestShedBeforeReading(t *testing.T) {
	var sh *shedding
	r := newRig(t, func(c *Config) {
		sh = &shedding{Publisher: c.Publisher.(*publish.Publisher)}
		c.Publisher = sh
	})
	const n = 100 // of each platform: 200 refusals would take 20 s to be logged in full
	sh.busy.Store(true)
	for range n {
		if got := r.post(t, PathDianwoda, dwdQuery(dwdBody, "wrong"), dwdBody); got.status != 503 || got.body != `{"code":"api.unknown_error","message":"too busy, retry later"}`+"\n" {
			t.Fatalf("forged Dianwoda callback while busy: %d %q, want 503 busy before verifying", got.status, got.body)
		}
		forged := elmBody(t, 56, `{"orderId":"1","state":"valid"}`, "wrong")
		if got := r.post(t, PathEleme, nil, forged); got.status != 503 || got.body != `{"message":"too busy, retry later"}`+"\n" {
			t.Fatalf("forged Eleme callback while busy: %d %q, want 503 busy before verifying", got.status, got.body)
		}
	}
	for _, p := range []string{"dianwoda", "eleme"} {
		if got := testutil.ToFloat64(r.srv.requests.WithLabelValues(p, OutcomeBusy)); got != n {
			t.Errorf("ingress_requests_total{%s,busy} = %v, want %d", p, got, n)
		}
		if got := testutil.ToFloat64(r.srv.requests.WithLabelValues(p, OutcomeBadSignature)); got != 0 {
			t.Errorf("ingress_requests_total{%s,bad_signature} = %v: shed callbacks were verified", p, got)
		}
	}
	if logged := strings.Count(r.logs.String(), `"outcome":"busy"`); logged < acceptedLogFirst || logged >= 2*n {
		t.Errorf("%d of %d busy refusals logged, want them sampled (%d a second, then 1 in %d)", logged, 2*n, acceptedLogFirst, acceptedLogThereafter)
	}

	sh.busy.Store(false)
	r.pub.SetHealth(errors.New("no broker"))
	if got := r.post(t, PathDianwoda, dwdQuery(dwdBody, dwdSecret), dwdBody); got.status != 503 || got.body != `{"code":"api.unknown_error","message":"not stored, retry later"}`+"\n" {
		t.Fatalf("callback while Kafka is down: %d %q, want 503 not stored", got.status, got.body)
	}
	if got := testutil.ToFloat64(r.srv.requests.WithLabelValues("dianwoda", OutcomeUnavailable)); got != 1 {
		t.Errorf("ingress_requests_total{dianwoda,kafka_unavailable} = %v, want 1", got)
	}
	r.pub.SetHealth(nil)
	if got := r.post(t, PathDianwoda, dwdQuery(dwdBody, dwdSecret), dwdBody); got.status != 200 {
		t.Fatalf("callback once Kafka is back: %d %s", got.status, got.body)
	}
	if recs := r.records(t); len(recs) != 1 {
		t.Fatalf("%d records, want the one callback accepted", len(recs))
	}
}
