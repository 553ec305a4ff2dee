package dianwoda

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/orderpipe/pipeline/ingress/internal/callback"
	"github.com/orderpipe/pipeline/ingress/internal/golden"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The worked example of docs/specs/platforms.md §2.2.
const (
	exampleBody   = `{"content":{"order_original_id":"FTP201511091198","order_status":"abnormal"},"deliver_times":1,"msg_id":"67798ea556724ee499b3aa65a3274047","pub_time":1545188246307}`
	exampleSecret = "test_secret"
	exampleSign   = "76a150656841b906d65cf0a3e3bbf0ecc9653055"
)

func exampleQuery() url.Values {
	return url.Values{"nonce": {"123456"}, "timestamp": {"1545188246307"}, "type": {TypeStatusUpdate}, "sign": {exampleSign}}
}

func TestSignWorkedExample(t *testing.T) {
	got := Sign("123456", "1545188246307", TypeStatusUpdate, []byte(exampleBody), exampleSecret)
	if got != exampleSign {
		t.Fatalf("Sign = %s, want %s (docs/specs/platforms.md §2.2)", got, exampleSign)
	}
}

func with(q url.Values, k, v string) url.Values {
	c := url.Values{}
	for kk, vv := range q {
		c[kk] = append([]string(nil), vv...)
	}
	if v == "" {
		c.Del(k)
	} else {
		c.Set(k, v)
	}
	return c
}

func TestVerify(t *testing.T) {
	q := exampleQuery()
	body := []byte(exampleBody)
	tests := []struct {
		name       string
		secrets    []string
		query      url.Values
		body       []byte
		wantReason string // "" = valid
	}{
		{"worked example", []string{exampleSecret}, q, body, ""},
		{"upper-case sign accepted", []string{exampleSecret}, with(q, "sign", strings.ToUpper(exampleSign)), body, ""},
		{"rotated: old secret first", []string{"old", exampleSecret}, q, body, ""},
		{"rotated: new secret first", []string{exampleSecret, "new"}, q, body, ""},
		{"wrong secret", []string{"nope"}, q, body, "mismatch"},
		{"no secret matches of several", []string{"a", "b", "c"}, q, body, "mismatch"},
		{"tampered body", []string{exampleSecret}, q, []byte(strings.Replace(exampleBody, "abnormal", "completed", 1)), "mismatch"},
		{"re-serialised body (space)", []string{exampleSecret}, q, []byte(strings.Replace(exampleBody, `,"deliver_times"`, `, "deliver_times"`, 1)), "mismatch"},
		{"reordered body fields", []string{exampleSecret}, q, []byte(`{"deliver_times":1,"content":{"order_original_id":"FTP201511091198","order_status":"abnormal"},"msg_id":"67798ea556724ee499b3aa65a3274047","pub_time":1545188246307}`), "mismatch"},
		{"tampered nonce", []string{exampleSecret}, with(q, "nonce", "123457"), body, "mismatch"},
		{"tampered timestamp", []string{exampleSecret}, with(q, "timestamp", "1545188246308"), body, "mismatch"},
		{"tampered type", []string{exampleSecret}, with(q, "type", "dianwoda.other"), body, "mismatch"},
		{"truncated sign", []string{exampleSecret}, with(q, "sign", exampleSign[:39]), body, "mismatch"},
		{"missing sign", []string{exampleSecret}, with(q, "sign", ""), body, "missing"},
		{"missing nonce", []string{exampleSecret}, with(q, "nonce", ""), body, "missing_parameter"},
		{"missing timestamp", []string{exampleSecret}, with(q, "timestamp", ""), body, "missing_parameter"},
		{"missing type", []string{exampleSecret}, with(q, "type", ""), body, "missing_parameter"},
		{"unsigned extra parameter ignored", []string{exampleSecret}, with(q, "appkey", "t123"), body, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewVerifier(tt.secrets).Verify(tt.query, tt.body)
			var se *callback.SignatureError
			if errors.As(err, &se) {
				if !errors.Is(err, callback.ErrSignature) {
					t.Errorf("%v is not ErrSignature", err)
				}
				if se.Reason != tt.wantReason {
					t.Errorf("reason = %q, want %q", se.Reason, tt.wantReason)
				}
				return
			}
			if err != nil || tt.wantReason != "" {
				t.Errorf("Verify = %v, want reason %q", err, tt.wantReason)
			}
		})
	}
}

// TestVerifyNeverLeaksSecret: the error text a handler shows and logs holds no secret or sign.
func TestVerifyNeverLeaksSecret(t *testing.T) {
	err := NewVerifier([]string{"s3cr3t-value"}).Verify(exampleQuery(), []byte(exampleBody))
	if err == nil {
		t.Fatal("want a mismatch")
	}
	for _, s := range []string{"s3cr3t-value", exampleSign} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q holds %q", err, s)
		}
	}
}

var parseCases = []struct {
	name string
	typ  string
	body string
}{
	{"worked example", TypeStatusUpdate, exampleBody},
	{"seed page example", TypeStatusUpdate, `{"content":{"order_original_id":"FTP201511091198","order_status":"abnormal","action_code":"customer_sign_abnormal","action_sub_code":"customer_reject","action_detail":"签收异常 - 客户拒收","rider_code":"10088","rider_name":"张德顺","rider_mobile":"13600000000","time_status_update":1429861697905},"deliver_times":1,"msg_id":"67798ea556724ee499b3aa65a3274047","pub_time":1545188246307}`},
	{"numeric order id above 2^53", TypeStatusUpdate, `{"content":{"order_original_id":9007199254740993123,"order_status":"created"},"msg_id":"m1"}`},
	{"reordered fields", TypeStatusUpdate, `{"msg_id":"m1","pub_time":1,"content":{"order_status":"created","order_original_id":"A-1"}}`},
	{"other type with order id", "test.seller.transportation.confirm-result", `{"content":{"order_original_id":"A-2"},"msg_id":"m2"}`},
	{"other type without order id", "test.seller.transportation.confirm-result", `{"content":{"seller_id":"s1"},"msg_id":"m3"}`},
	{"other type without content", "x.y", `{"msg_id":"m4"}`},
	{"status update without order id", TypeStatusUpdate, `{"content":{"order_status":"created"},"msg_id":"m5"}`},
	{"status update without content", TypeStatusUpdate, `{"msg_id":"m6"}`},
	{"order id not scalar", TypeStatusUpdate, `{"content":{"order_original_id":{"a":1}},"msg_id":"m7"}`},
	{"content not an object", TypeStatusUpdate, `{"content":"x","msg_id":"m8"}`},
	{"other type without msg_id", "x.y", `{"content":{}}`},
	{"array body", TypeStatusUpdate, `[1,2]`},
	{"not JSON", TypeStatusUpdate, `order=1`},
	{"empty body", TypeStatusUpdate, ``},
	{"trailing garbage", TypeStatusUpdate, `{"content":{"order_original_id":"A"},"msg_id":"m"}}`},
	{"null body", TypeStatusUpdate, `null`},
}

// TestParseGolden pins the key, order id or error of every case in testdata/parse.golden.
func TestParseGolden(t *testing.T) {
	var b strings.Builder
	for _, tt := range parseCases {
		p, err := Parse(url.Values{"type": {tt.typ}}, []byte(tt.body))
		if err != nil {
			if !errors.Is(err, callback.ErrMalformed) {
				t.Errorf("%s: error %v is not ErrMalformed", tt.name, err)
			}
			fmt.Fprintf(&b, "%s\n\terror: %v\n", tt.name, err)
			continue
		}
		fmt.Fprintf(&b, "%s\n\tkey: %s\n\torder_id: %q\n", tt.name, p.Key, p.OrderID)
	}
	golden.Check(t, *update, "parse.golden", []byte(b.String()))
}
