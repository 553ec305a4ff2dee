package server

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestIngressIDAndRequestID: a request id the ingress makes belongs to that request alone, so an
// accepted callback's record carries it as its ingress_id; a caller's id may repeat (a platform
// retrying), so then the record gets an id of its own. received_at is when serving began.
func TestIngressIDAndRequestID(t *testing.T) {
	r := newRig(t)
	body := elmBody(t, 12, `{"orderId":"R1","state":"valid"}`, elmSecret)
	before := time.Now().Truncate(time.Millisecond)
	sent := []struct{ name, header string }{
		{"none sent", ""},
		{"a caller's id", "platform-retry-7"},
		{"the same id again", "platform-retry-7"},
		{"an unusable id", "has space"},
	}
	var replyIDs []string
	for _, s := range sent {
		var hdr []string
		if s.header != "" {
			hdr = []string{"X-Request-Id", s.header}
		}
		rep := r.post(t, PathEleme, nil, body, hdr...)
		if rep.status != 200 {
			t.Fatalf("%s: status %d %s", s.name, rep.status, rep.body)
		}
		replyIDs = append(replyIDs, rep.header.Get("X-Request-Id"))
	}
	// A refused request is given an id too; it must not be one a record gets.
	if rep := r.post(t, PathEleme, nil, elmBody(t, 12, `{"orderId":"R1"}`, "wrong")); rep.status != 401 || rep.header.Get("X-Request-Id") == "" {
		t.Fatalf("refused: status %d, X-Request-Id %q", rep.status, rep.header.Get("X-Request-Id"))
	}
	after := time.Now()

	recs := r.records(t)
	if len(recs) != len(sent) {
		t.Fatalf("%d records, want %d", len(recs), len(sent))
	}
	seen := map[string]bool{}
	for i, m := range recs {
		env := envelopeOf(t, m)
		if _, err := uuid.Parse(env.IngressID); err != nil || seen[env.IngressID] {
			t.Errorf("%s: ingress_id %q not a fresh UUID (%v)", sent[i].name, env.IngressID, err)
		}
		seen[env.IngressID] = true
		own := sent[i].header == "" || sent[i].header == "has space"
		if own && (env.IngressID != replyIDs[i] || replyIDs[i] == sent[i].header) {
			t.Errorf("%s: ingress_id %s, reply's X-Request-Id %s: want one id, made here", sent[i].name, env.IngressID, replyIDs[i])
		}
		if !own && (replyIDs[i] != sent[i].header || env.IngressID == sent[i].header) {
			t.Errorf("%s: reply's X-Request-Id %q, ingress_id %q: want the caller's id kept and a new ingress_id", sent[i].name, replyIDs[i], env.IngressID)
		}
		if at := env.ReceivedAt.Time; at.Before(before) || at.After(after) || !m.Time.Equal(at) {
			t.Errorf("%s: received_at %v (kafka time %v), want within %v..%v", sent[i].name, at, m.Time, before, after)
		}
	}
}
