package ddsandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderpipe/pipeline/dispatcher/internal/dangdang"
	"github.com/orderpipe/pipeline/plumbing/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	demo   = Shop{AppKey: "2100000000", Secret: "test_secret", Session: "SESSIONKEY"}
	loose  = Shop{AppKey: "2100000001", Secret: "s2", AllowSuccessToFailure: true}
	demoCr = dangdang.Credentials{AppKey: demo.AppKey, AppSecret: demo.Secret, Session: demo.Session}
)

func start(t *testing.T) (*Sandbox, *dangdang.Client, string) {
	t.Helper()
	sb := New(demo, loose)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	return sb, &dangdang.Client{URL: srv.URL + "/openapi/rest", HTTP: &http.Client{Timeout: 2 * time.Second}}, srv.URL
}

func upd(id string, st int) dangdang.OrderUpdate {
	return dangdang.OrderUpdate{OrderID: id, DistriStatus: st, DistriTime: time.Now()}
}

func codes(r *dangdang.Response) string {
	var s []string
	for _, o := range r.Orders {
		s = append(s, o.OrderID+"="+o.Code)
	}
	return strings.Join(s, ",")
}

func TestTransitions(t *testing.T) {
	tests := []struct {
		name  string
		cred  dangdang.Credentials
		steps [][]dangdang.OrderUpdate
		want  string // codes of the last call
	}{
		{"deliver", demoCr, [][]dangdang.OrderUpdate{{upd("1", 1)}}, "1=0"},
		{"re-mark delivered", demoCr, [][]dangdang.OrderUpdate{{upd("1", 1)}, {upd("1", 1)}}, "1=0"},
		{"failed to delivered refused", demoCr, [][]dangdang.OrderUpdate{{upd("1", 2)}, {upd("1", 1)}}, "1=605"},
		{"delivered to failed refused", demoCr, [][]dangdang.OrderUpdate{{upd("1", 1)}, {upd("1", 2)}}, "1=605"},
		{"delivered to failed allowed", dangdang.Credentials{AppKey: loose.AppKey, AppSecret: loose.Secret}, [][]dangdang.OrderUpdate{{upd("1", 1)}, {upd("1", 2)}}, "1=0"},
		{"bad id", demoCr, [][]dangdang.OrderUpdate{{upd("x1", 1), upd("2", 1)}}, "x1=35,2=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c, _ := start(t)
			var r *dangdang.Response
			var err error
			for _, step := range tt.steps {
				if r, err = c.Update(context.Background(), tt.cred, step); err != nil {
					t.Fatal(err)
				}
			}
			if got := codes(r); got != tt.want {
				t.Fatalf("codes = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	_, c, base := start(t)
	bad := demoCr
	bad.AppSecret = "wrong"
	_, err := c.Update(context.Background(), bad, []dangdang.OrderUpdate{upd("1", 1)})
	var ae *dangdang.APIError
	if !errors.As(err, &ae) || ae.Code != CodeBadSign {
		t.Fatalf("bad sign: %v", err)
	}
	unknown := dangdang.Credentials{AppKey: "999", AppSecret: "x"}
	if _, err := c.Update(context.Background(), unknown, []dangdang.OrderUpdate{upd("1", 1)}); !errors.As(err, &ae) || ae.Code != CodeUnknownShop {
		t.Fatalf("unknown shop: %v", err)
	}

	// 101 orders: built by hand, since the client refuses to.
	var x strings.Builder
	x.WriteString(`<?xml version="1.0" encoding="GBK"?><request><OrdersList>`)
	for i := range 101 {
		fmt.Fprintf(&x, "<OrderInfo><orderID>%d</orderID><distriStatus>1</distriStatus><distriTime>2024-01-02 03:04:05</distriTime></OrderInfo>", i+1)
	}
	x.WriteString(`</OrdersList></request>`)
	now := time.Now()
	params := dangdang.SystemParams(demoCr, now)
	sign, _ := dangdang.Sign(demoCr.AppSecret, params)
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	q.Set("sign", sign)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile(dangdang.FilePart, dangdang.FilePart)
	fw.Write([]byte(x.String()))
	mw.Close()
	resp, err := http.Post(base+"/openapi/rest?"+q.Encode(), mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body)
	if _, err := dangdang.ParseResponse(raw.Bytes()); !errors.As(err, &ae) || ae.Code != CodeTooMany {
		t.Fatalf("101 orders: %v", err)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		fault Fault
		check func(error) bool
		codes string
	}{
		{Fault{Kind: FaultHTTP5xx, Times: 1}, func(err error) bool {
			var he *dangdang.HTTPError
			return errors.As(err, &he) && he.StatusCode == 503
		}, ""},
		{Fault{Kind: FaultTimeout, Times: 1}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "Timeout") }, ""},
		{Fault{Kind: FaultRateLimit, Times: 1}, func(err error) bool {
			var ae *dangdang.APIError
			return errors.As(err, &ae) && ae.RateLimited()
		}, ""},
		{Fault{Kind: FaultExpired, Times: 1}, func(err error) bool {
			var ae *dangdang.APIError
			return errors.As(err, &ae) && ae.SubscriptionExpired()
		}, ""},
		{Fault{Kind: FaultSystemError, Times: 1}, func(err error) bool {
			var ae *dangdang.APIError
			return errors.As(err, &ae) && ae.Code == CodeOperFailed
		}, ""},
		{Fault{Kind: FaultOrderFail, Times: 1, OrderIDs: []string{"2"}, Code: "51"}, func(err error) bool { return err == nil }, "1=0,2=51"},
		{Fault{Kind: FaultSlow, Times: 1, DelayMS: 50}, func(err error) bool { return err == nil }, "1=0,2=0"},
	}
	for _, tt := range tests {
		t.Run(tt.fault.Kind, func(t *testing.T) {
			sb, c, _ := start(t)
			c.HTTP.Timeout = 300 * time.Millisecond
			if err := sb.Inject(tt.fault); err != nil {
				t.Fatal(err)
			}
			batch := []dangdang.OrderUpdate{upd("1", 1), upd("2", 1)}
			r, err := c.Update(context.Background(), demoCr, batch)
			if !tt.check(err) {
				t.Fatalf("unexpected answer: %v", err)
			}
			if tt.codes != "" && codes(r) != tt.codes {
				t.Fatalf("codes = %s, want %s", codes(r), tt.codes)
			}
			// Times: 1 — the next call is served normally.
			if r, err := c.Update(context.Background(), demoCr, batch); err != nil || codes(r) != "1=0,2=0" {
				t.Fatalf("after fault: %v %v", err, r)
			}
		})
	}
}

func TestAdminAPI(t *testing.T) {
	sb, c, base := start(t)
	post := func(path, body string) int {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post("/sandbox/faults", `{"kind":"order_fail","order_ids":["7"],"times":1}`); st != http.StatusCreated {
		t.Fatalf("inject: %d", st)
	}
	if st := post("/sandbox/faults", `{"kind":"nope"}`); st != http.StatusBadRequest {
		t.Fatalf("bad fault: %d", st)
	}
	if _, err := c.Update(context.Background(), demoCr, []dangdang.OrderUpdate{upd("7", 1), upd("8", 1)}); err != nil {
		t.Fatal(err)
	}
	get := func(path string, v any) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var o Order
	get("/sandbox/orders/2100000000/8", &o)
	if o.DistriStatus != 1 || o.Accepted != 1 {
		t.Fatalf("order 8 = %+v", o)
	}
	var calls []Call
	get("/sandbox/calls?shop=2100000000", &calls)
	if len(calls) != 1 || strings.Join(calls[0].Orders, ",") != "7,8" {
		t.Fatalf("calls = %+v", calls)
	}
	var st Stats
	get("/sandbox/stats", &st)
	if st.Calls != 1 || st.OrdersAccepted != 1 || st.OrdersRejected != 1 {
		t.Fatalf("stats = %+v", st)
	}
	if post("/sandbox/reset", "") != http.StatusNoContent || len(sb.Orders("")) != 0 {
		t.Fatal("reset")
	}
}

func TestParseShops(t *testing.T) {
	got, err := ParseShops("2100000000=test_secret; 7=s,allow_success_to_failure,session=X")
	if err != nil {
		t.Fatal(err)
	}
	want := []Shop{{AppKey: "2100000000", Secret: "test_secret"}, {AppKey: "7", Secret: "s", AllowSuccessToFailure: true, Session: "X"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range []string{"nokey", "a=b,weird"} {
		if _, err := ParseShops(bad); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}

// TestAdminContract pins the admin routes the e2e harness and the chaos suite call.
func TestAdminContract(t *testing.T) {
	sandboxtest.Run(t, sandboxtest.Contract{
		Handler: New(Shop{AppKey: "2100000000", Secret: "test_secret"}).Handler(),
		Fault:   `{"kind":"order_fail","shop":"2100000000","times":2,"order_ids":["7"]}`,
		Echo:    "{\n  \"kind\": \"order_fail\",\n  \"shop\": \"2100000000\",\n  \"times\": 2,\n  \"order_ids\": [\n    \"7\"\n  ]\n}\n",
		Armed:   "[\n  {\n    \"kind\": \"order_fail\",\n    \"shop\": \"2100000000\",\n    \"times\": 2,\n    \"order_ids\": [\n      \"7\"\n    ]\n  }\n]\n",
		Stats:   "{\n  \"calls\": 0,\n  \"calls_by_outcome\": {},\n  \"orders_accepted\": 0,\n  \"orders_rejected\": 0\n}\n",
	})
}
