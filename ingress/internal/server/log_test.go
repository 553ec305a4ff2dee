package server

import (
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestAccessLogMasks: whatever a caller sends, the log holds no secret, no signature and no full
// phone number, while it still says what happened.
func TestAccessLogMasks(t *testing.T) {
	r := newRig(t)
	phone := "13912345678"
	body := strings.Replace(dwdBody, "13600000000", phone, 1)
	good := dwdQuery(body, dwdSecret)
	good.Set("mobile", phone) // an unsigned extra parameter holding a phone number
	bad := dwdQuery(body, "wrong")
	elm := elmBody(t, 56, `{"orderId":"1201961795738011871","phone":"`+phone+`"}`, elmSecret)
	elmBad := elmBody(t, 56, `{"orderId":"1201961795738011871","phone":"`+phone+`"}`, "wrong")

	r.post(t, PathDianwoda, good, body, "User-Agent", "agent "+phone, "X-Request-Id", "rid-"+phone)
	r.post(t, PathDianwoda, bad, body)
	r.post(t, PathEleme, nil, elm)
	r.post(t, PathEleme, nil, elmBad)
	r.post(t, PathDianwoda, url.Values{"sign": {"deadbeef"}, "secret": {dwdSecret}}, body)

	logs := r.logs.String()
	never := []string{phone, dwdSecret, elmSecret, "old-secret", good.Get("sign"), bad.Get("sign"), "deadbeef", signatureOf(elm), signatureOf(elmBad)}
	for _, s := range never {
		if strings.Contains(logs, s) {
			t.Errorf("log holds %q:\n%s", s, logs)
		}
	}
	for _, s := range []string{"139******78", `"outcome":"ok"`, `"outcome":"bad_signature"`, "[redacted]", `"order_id":"FTP201511091198"`} {
		if !strings.Contains(logs, s) {
			t.Errorf("log lacks %q:\n%s", s, logs)
		}
	}
}

func signatureOf(body string) string {
	i := strings.Index(body, `"signature":"`)
	return body[i+13 : i+13+32]
}

func TestMaskPhones(t *testing.T) {
	tests := []struct{ give, want string }{
		{"13600000000", "136******00"},
		{"tel:13600000000;", "tel:136******00;"},
		{"1201961795738011871", "1201961795738011871"}, // an order id, not a phone
		{"23600000000", "23600000000"},
		{"a13600000000b13700000000", "a136******00b137******00"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := MaskPhones(tt.give); got != tt.want {
			t.Errorf("MaskPhones(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// TestAcceptedLogSampled: accepted callbacks are access-logged sampled by default (the first
// acceptedLogFirst a second, then one in acceptedLogThereafter), refusals other than shedding
// always (shed ones are sampled: TestShedBeforeReading); "all" and "none" do what they say. The
// metrics count every request whatever the log keeps.
func TestAcceptedLogSampled(t *testing.T) {
	const accepted, refused = 40, 15
	for _, tt := range []struct {
		mode   string
		wantOK func(int) bool
	}{
		{"", func(n int) bool { return n >= acceptedLogFirst && n < accepted }},
		{AcceptedLogAll, func(n int) bool { return n == accepted }},
		{AcceptedLogNone, func(n int) bool { return n == 0 }},
	} {
		t.Run("mode="+tt.mode, func(t *testing.T) {
			r := newRig(t, func(c *Config) { c.AcceptedLog = tt.mode })
			for i := range accepted {
				body := strings.Replace(dwdBody, "FTP201511091198", "FTP20151109"+strconv.Itoa(1000+i), 1)
				if got := r.post(t, PathDianwoda, dwdQuery(body, dwdSecret), body); got.status != 200 {
					t.Fatalf("accepted callback answered %d %s", got.status, got.body)
				}
			}
			for range refused {
				if got := r.post(t, PathDianwoda, dwdQuery(dwdBody, "wrong"), dwdBody); got.status != 401 {
					t.Fatalf("forged callback answered %d", got.status)
				}
			}
			logs := r.logs.String()
			ok, bad := strings.Count(logs, `"outcome":"ok"`), strings.Count(logs, `"outcome":"bad_signature"`)
			if !tt.wantOK(ok) || bad != refused {
				t.Errorf("mode %q logged %d accepted of %d and %d refused of %d", tt.mode, ok, accepted, bad, refused)
			}
			if n := testutil.ToFloat64(r.srv.requests.WithLabelValues("dianwoda", OutcomeOK)); n != accepted {
				t.Errorf("ingress_requests_total{outcome=ok} = %v, want %d", n, accepted)
			}
		})
	}
}
