package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/orderpipe/pipeline/ingress/internal/dianwoda"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/schemas"
)

const dwdBody = `{"content":{"order_original_id":"FTP201511091198","order_status":"abnormal","action_code":"customer_sign_abnormal","action_sub_code":"customer_reject","action_detail":"签收异常 - 客户拒收","rider_code":"10088","rider_name":"张德顺","rider_mobile":"13600000000","time_status_update":1429861697905},"deliver_times":1,"msg_id":"67798ea556724ee499b3aa65a3274047","pub_time":1545188246307}`

// TestRepliesAndRecords sends every kind of callback through the real router to the real broker,
// checks each reply byte for byte, and then that exactly the "success" ones are on the topic, in
// order, with their key, headers and the body byte for byte.
func TestRepliesAndRecords(t *testing.T) {
	r := newRig(t)
	elm12 := elmBody(t, 12, `{"orderId":"100027500485933656","state":"settled","shopId":968861,"updateTime":1482161481,"role":3}`, elmSecret)
	elmBig := elmBody(t, 56, `{"orderId":1201961795738011871,"state":"completed","phone":"13600000000","updateAt":1482161481000}`, elmSecret)
	elmShop := elmBody(t, 91, `{"shopId":968861,"status":1}`, elmSecret)
	otherType := `{"content":{"seller_id":"s1"},"msg_id":"m-77","pub_time":1}`
	otherQ := dwdQuery(otherType, dwdSecret)
	otherQ.Set("type", "test.seller.transportation.confirm-result")
	otherQ.Set("sign", dianwoda.Sign("123456", "1545188246307", "test.seller.transportation.confirm-result", []byte(otherType), dwdSecret))
	big := `{"pad":"` + strings.Repeat("x", 1100) + `"}`

	tests := []struct {
		name       string
		method     string
		path       string
		query      url.Values
		body       string
		wantStatus int
		wantBody   string
		wantKey    string // non-empty: a record with this key must be on the topic
		wantOrder  string
	}{
		{"dianwoda ok", "POST", PathDianwoda, dwdQuery(dwdBody, dwdSecret), dwdBody, 200, `{"code":"success"}`, "dianwoda:FTP201511091198", "FTP201511091198"},
		{"dianwoda rotated secret", "POST", PathDianwoda, dwdQuery(dwdBody, "old-secret"), dwdBody, 200, `{"code":"success"}`, "dianwoda:FTP201511091198", "FTP201511091198"},
		{"dianwoda other type keyed by msg_id", "POST", PathDianwoda, otherQ, otherType, 200, `{"code":"success"}`, "dianwoda:msg:m-77", ""},
		{"dianwoda wrong secret", "POST", PathDianwoda, dwdQuery(dwdBody, "wrong"), dwdBody, 401, `{"code":"sys.invalid_signature","message":"signature does not match"}`, "", ""},
		{"dianwoda missing sign", "POST", PathDianwoda, url.Values{"type": {dianwoda.TypeStatusUpdate}, "nonce": {"1"}, "timestamp": {"2"}}, dwdBody, 401, `{"code":"sys.invalid_signature","message":"missing sign"}`, "", ""},
		{"dianwoda tampered body", "POST", PathDianwoda, dwdQuery(dwdBody, dwdSecret), strings.Replace(dwdBody, "abnormal", "completed", 1), 401, `{"code":"sys.invalid_signature","message":"signature does not match"}`, "", ""},
		{"dianwoda signed garbage", "POST", PathDianwoda, dwdQuery("order=1", dwdSecret), "order=1", 400, `{"code":"sys.invalid_parameter","message":"malformed callback: body: not a JSON object"}`, "", ""},
		{"dianwoda too large", "POST", PathDianwoda, dwdQuery(big, dwdSecret), big, 413, `{"code":"sys.invalid_parameter","message":"body exceeds 1024 bytes"}`, "", ""},
		{"dianwoda GET", "GET", PathDianwoda, nil, "", 405, `{"code":"sys.api_not_existed","message":"Method Not Allowed"}`, "", ""},
		{"eleme ok", "POST", PathEleme, nil, elm12, 200, `{"message":"ok"}`, "eleme:100027500485933656", "100027500485933656"},
		{"eleme ok with a query kept", "POST", PathEleme, url.Values{"via": {"gateway"}}, elm12, 200, `{"message":"ok"}`, "eleme:100027500485933656", "100027500485933656"},
		{"eleme numeric order id above 2^53", "POST", PathEleme, nil, elmBig, 200, `{"message":"ok"}`, "eleme:1201961795738011871", "1201961795738011871"},
		{"eleme shop message", "POST", PathEleme, nil, elmShop, 200, `{"message":"ok"}`, "eleme:shop:968861", ""},
		{"eleme wrong secret", "POST", PathEleme, nil, elmBody(t, 12, `{"orderId":"1"}`, "wrong"), 401, `{"message":"signature does not match"}`, "", ""},
		{"eleme unknown app", "POST", PathEleme, nil, strings.Replace(elm12, elmApp, "111", 1), 401, `{"message":"unknown appId"}`, "", ""},
		{"eleme missing signature", "POST", PathEleme, nil, `{"appId":1,"type":12,"message":"{}"}`, 401, `{"message":"missing signature"}`, "", ""},
		{"eleme not json", "POST", PathEleme, nil, `appId=1`, 400, `{"message":"malformed callback: body: not a JSON object"}`, "", ""},
		{"eleme too large", "POST", PathEleme, nil, big, 413, `{"message":"body exceeds 1024 bytes"}`, "", ""},
		{"eleme url check POST empty", "POST", PathEleme, nil, "", 200, `{"message":"ok"}`, "", ""},
		{"eleme url check GET", "GET", PathEleme, nil, "", 200, `{"message":"ok"}`, "", ""},
		{"unknown route", "POST", "/v1/callbacks/meituan", nil, "{}", 404, `{"message":"Not Found"}`, "", ""},
	}
	type sent struct {
		key, order, body, platform string
		query                      url.Values
	}
	var want []sent
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := r.url + tt.path
			if len(tt.query) > 0 {
				u += "?" + tt.query.Encode()
			}
			req, _ := http.NewRequest(tt.method, u, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
			req.Header.Set("Authorization", "Bearer never-copied")
			got := do(t, req)
			if got.status != tt.wantStatus || strings.TrimSpace(got.body) != tt.wantBody {
				t.Errorf("reply %d %s, want %d %s", got.status, got.body, tt.wantStatus, tt.wantBody)
			}
			if got.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id on the reply")
			}
		})
		if tt.wantKey != "" {
			platform := schemas.PlatformEleme
			if tt.path == PathDianwoda {
				platform = schemas.PlatformDianwoda
			}
			want = append(want, sent{tt.wantKey, tt.wantOrder, tt.body, platform, tt.query})
		}
	}

	recs := r.records(t)
	if len(recs) != len(want) {
		t.Fatalf("%d records on the topic, want %d (only the success replies)", len(recs), len(want))
	}
	ids := map[string]bool{}
	for i, m := range recs {
		env := envelopeOf(t, m)
		w := want[i]
		if string(m.Key) != w.key {
			t.Errorf("record %d key %q, want %q", i, m.Key, w.key)
		}
		if string(env.Body) != w.body {
			t.Errorf("record %d body differs from the bytes sent:\n got %s\nwant %s", i, env.Body, w.body)
		}
		if env.Version != schemas.RawEnvelopeVersion || env.Platform != w.platform || env.OrderID != w.order || env.IngressID == "" || env.ReceivedAt.IsZero() {
			t.Errorf("record %d envelope %+v", i, env)
		}
		if ids[env.IngressID] {
			t.Errorf("ingress id %s reused", env.IngressID)
		}
		ids[env.IngressID] = true
		if url.Values(env.Query).Encode() != w.query.Encode() { // none sent: none kept
			t.Errorf("record %d query %v, want %v", i, env.Query, w.query)
		}
		if env.Headers["Content-Type"] != "application/json" || env.Headers["traceparent"] == "" || env.Headers["Authorization"] != "" || len(env.Headers) != 3 {
			t.Errorf("record %d headers %v (want Content-Type, User-Agent, traceparent only)", i, env.Headers)
		}
		if kafkaio.Header(m, "content-type") != "application/json" || kafkaio.Header(m, "platform") != w.platform ||
			kafkaio.Header(m, "traceparent") != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
			t.Errorf("record %d kafka headers %v", i, m.Headers)
		}
	}
}

// TestUnconfigured: a platform without secrets answers 503 in its shape, and says why in the log.
func TestUnconfigured(t *testing.T) {
	r := newRig(t, func(c *Config) { c.DianwodaSecrets, c.ElemeSecrets = nil, nil })
	tests := []struct {
		method, path, body string
		want               string
	}{
		{"POST", PathDianwoda, dwdBody, `{"code":"api.unknown_error","message":"callback route not configured"}`},
		{"POST", PathEleme, `{"appId":1}`, `{"message":"callback route not configured"}`},
		{"GET", PathEleme, "", `{"message":"callback route not configured"}`},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, r.url+tt.path, strings.NewReader(tt.body))
		got := do(t, req)
		if got.status != 503 || strings.TrimSpace(got.body) != tt.want {
			t.Errorf("%s %s: %d %s, want 503 %s", tt.method, tt.path, got.status, got.body, tt.want)
		}
	}
	for _, v := range []string{"DIANWODA_SECRETS", "ELEME_SECRETS"} {
		if !strings.Contains(r.logs.String(), v) {
			t.Errorf("log does not say %s is missing", v)
		}
	}
	if recs := r.records(t); len(recs) != 0 {
		t.Errorf("%d records written", len(recs))
	}
}

// TestKeptHeadersCanonical: publish indexes the request's header map with keptHeaders, which
// finds a header only by its canonical name.
func TestKeptHeadersCanonical(t *testing.T) {
	for _, h := range keptHeaders {
		if c := http.CanonicalHeaderKey(h); c != h {
			t.Errorf("kept header %q is not canonical (%q)", h, c)
		}
	}
}

// TestRefusalBytesIgnoreTheQuery: a refusal's body is the same bytes whatever the request's
// query. echo's c.JSON indents its output when the query has a `pretty` parameter, so before
// refusals were written from their pre-encoded shape, `?pretty` changed every 4xx/5xx body.
func TestRefusalBytesIgnoreTheQuery(t *testing.T) {
	r := newRig(t)
	pretty := func(q url.Values) url.Values {
		if q == nil {
			q = url.Values{}
		}
		q.Set("pretty", "")
		return q
	}
	tests := []struct {
		name, method, path string
		query              url.Values
		body, want         string
		status             int
	}{
		{"dianwoda wrong secret", "POST", PathDianwoda, pretty(dwdQuery(dwdBody, "wrong")), dwdBody,
			`{"code":"sys.invalid_signature","message":"signature does not match"}`, 401},
		{"dianwoda GET", "GET", PathDianwoda, pretty(nil), "",
			`{"code":"sys.api_not_existed","message":"Method Not Allowed"}`, 405},
		{"eleme not json", "POST", PathEleme, pretty(nil), `appId=1`,
			`{"message":"malformed callback: body: not a JSON object"}`, 400},
		{"unknown route", "POST", "/v1/callbacks/meituan", pretty(nil), "{}", `{"message":"Not Found"}`, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, r.url+tt.path+"?"+tt.query.Encode(), strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			got := do(t, req)
			if got.status != tt.status || got.body != tt.want+"\n" {
				t.Errorf("reply %d %q, want %d %q", got.status, got.body, tt.status, tt.want+"\n")
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}
