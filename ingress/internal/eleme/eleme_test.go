package eleme

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/orderpipe/pipeline/ingress/internal/callback"
	"github.com/orderpipe/pipeline/ingress/internal/golden"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The worked example of docs/specs/platforms.md §1.2 (type 12 from the seed page, made-up secret).
const (
	exampleBase   = `appId=62933118message={"orderId":"100027500485933656","state":"settled","shopId":968861,"updateTime":1482161481,"role":3}requestId=10135shopId=968861timestamp=1482161482053type=12userId=62864532`
	exampleSecret = "test_secret"
	exampleSign   = "CC1586E404AF74522DB25A6283DD804B"
	exampleApp    = "62933118"
)

// exampleBody is the seed page's type-12 push with the signature made with exampleSecret.
func exampleBody(sig string) string {
	return `{ "appId":62933118, "requestId": "10135", "type": 12, "message": "{\"orderId\":\"100027500485933656\",\"state\":\"settled\",\"shopId\":968861,\"updateTime\":1482161481,\"role\":3}", "shopId": 968861, "timestamp": 1482161482053, "signature": "` + sig + `", "userId": 62864532 }`
}

func TestSignWorkedExample(t *testing.T) {
	if got := Sign([]byte(exampleBase), exampleSecret); got != exampleSign {
		t.Fatalf("Sign = %s, want %s (docs/specs/platforms.md §1.2)", got, exampleSign)
	}
	p, err := ParsePush([]byte(exampleBody(exampleSign)))
	if err != nil {
		t.Fatal(err)
	}
	if string(p.AppendBase(nil)) != exampleBase {
		t.Fatalf("pre-hash string\n got %s\nwant %s", p.AppendBase(nil), exampleBase)
	}
}

func TestVerify(t *testing.T) {
	apps := func(kv ...string) map[string][]string {
		m := map[string][]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = append(m[kv[i]], kv[i+1])
		}
		return m
	}
	body := exampleBody(exampleSign)
	tests := []struct {
		name       string
		apps       map[string][]string
		body       string
		wantReason string // "" = valid
	}{
		{"worked example", apps(exampleApp, exampleSecret), body, ""},
		{"lower-case signature accepted", apps(exampleApp, exampleSecret), exampleBody(strings.ToLower(exampleSign)), ""},
		{"rotated: old and new secret", apps(exampleApp, "old", exampleApp, exampleSecret), body, ""},
		{"rotated: new listed first", apps(exampleApp, exampleSecret, exampleApp, "next"), body, ""},
		{"another app's secret does not count", apps(exampleApp, "wrong", "111", exampleSecret), body, "mismatch"},
		{"wrong secret", apps(exampleApp, "wrong"), body, "mismatch"},
		{"unknown appId", apps("111", exampleSecret), body, "unknown_app"},
		{"missing signature", apps(exampleApp, exampleSecret), strings.Replace(body, `"signature": "`+exampleSign+`",`, "", 1), "missing"},
		{"empty signature", apps(exampleApp, exampleSecret), exampleBody(""), "missing"},
		{"truncated signature", apps(exampleApp, exampleSecret), exampleBody(exampleSign[:31]), "mismatch"},
		{"tampered message", apps(exampleApp, exampleSecret), strings.Replace(body, "settled", "invalid", 1), "mismatch"},
		{"tampered type", apps(exampleApp, exampleSecret), strings.Replace(body, `"type": 12`, `"type": 14`, 1), "mismatch"},
		{"type as string signs the same text", apps(exampleApp, exampleSecret), strings.Replace(body, `"type": 12`, `"type": "12"`, 1), ""},
		{"userId as string signs the same text", apps(exampleApp, exampleSecret), strings.Replace(body, `"userId": 62864532`, `"userId": "62864532"`, 1), ""},
		{"reordered fields and whitespace", apps(exampleApp, exampleSecret), `{"userId":62864532,"signature":"` + exampleSign + `","timestamp":1482161482053,"shopId":968861,"message":"{\"orderId\":\"100027500485933656\",\"state\":\"settled\",\"shopId\":968861,\"updateTime\":1482161481,\"role\":3}","type":12,"requestId":"10135","appId":62933118}`, ""},
		{"re-serialised message", apps(exampleApp, exampleSecret), strings.Replace(body, `{\"orderId\"`, `{ \"orderId\"`, 1), "mismatch"},
		{"extra field is signed", apps(exampleApp, exampleSecret), strings.Replace(body, `"userId"`, `"extra": 1, "userId"`, 1), "mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePush([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			err = NewVerifier(tt.apps).Verify(p)
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

func TestVerifyNeverLeaksSecret(t *testing.T) {
	p, _ := ParsePush([]byte(exampleBody(exampleSign)))
	err := NewVerifier(map[string][]string{exampleApp: {"s3cr3t-value"}}).Verify(p)
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
	body string
}{
	{"worked example (type 12)", exampleBody(exampleSign)},
	{"refund type 30 as string", `{ "appId":62933118, "requestId": "7637", "type": "30", "message": "{\"orderId\":\"1201961795738011871\",\"refundStatus\":\"applied\",\"reason\":\"用户申请退单\",\"shopId\":150008082,\"updateTime\":1508419376,\"refundType\":\"normal\",\"totalPrice\":16.03,\"goodsList\":[]}", "shopId": 150008082, "timestamp": 1481694496373, "signature": "A1178A435FB4D4DFE239747E03CC81A4", "userId": 62864532 }`},
	{"numeric orderId above 2^53", `{"appId":1,"type":56,"message":"{\"orderId\":1201961795738011871,\"state\":\"completed\",\"phone\":\"13600000000\"}","shopId":2,"signature":"X","userId":100452735447201579}`},
	{"escaped unicode in message", `{"appId":1,"type":12,"message":"{\"orderId\":\"3000000000000000001\",\"reason\":\"\u7528\u6237\"}","shopId":2,"signature":"X"}`},
	{"shop status 91 without orderId", `{"appId":1,"type":91,"message":"{\"shopId\":968861,\"status\":1}","shopId":968861,"signature":"X"}`},
	{"auth 100 without shop", `{"appId":1,"type":100,"message":"{\"userId\":5486031036067039666}","signature":"X","userId":"5486031036067039666"}`},
	{"message not JSON", `{"appId":1,"type":45,"message":"hurry","shopId":7,"signature":"X"}`},
	{"orderId null", `{"appId":1,"type":45,"message":"{\"orderId\":null}","shopId":7,"signature":"X"}`},
	{"orderId an object", `{"appId":1,"type":12,"message":"{\"orderId\":{}}","shopId":7,"signature":"X"}`},
	{"message not a string", `{"appId":1,"type":12,"message":{"orderId":"1"},"signature":"X"}`},
	{"missing appId", `{"type":12,"message":"{}","signature":"X"}`},
	{"missing type", `{"appId":1,"message":"{}","signature":"X"}`},
	{"missing message", `{"appId":1,"type":12,"signature":"X"}`},
	{"appId a bool", `{"appId":true,"type":12,"message":"{}","signature":"X"}`},
	{"not JSON", `appId=1&type=12`},
	{"array", `[]`},
	{"empty", ``},
}

// TestKeyGolden pins the key, order id or error of every case in testdata/key.golden.
func TestKeyGolden(t *testing.T) {
	var b strings.Builder
	for _, tt := range parseCases {
		p, err := ParsePush([]byte(tt.body))
		if err == nil {
			var k callback.Parsed
			if k, err = Key(p); err == nil {
				fmt.Fprintf(&b, "%s\n\tkey: %s\n\torder_id: %q\n\ttype: %s\n", tt.name, k.Key, k.OrderID, k.Type)
				continue
			}
		}
		if !errors.Is(err, callback.ErrMalformed) {
			t.Errorf("%s: error %v is not ErrMalformed", tt.name, err)
		}
		fmt.Fprintf(&b, "%s\n\terror: %v\n", tt.name, err)
	}
	golden.Check(t, *update, "key.golden", []byte(b.String()))
}

// An order message that names its order by "id" (OOrder: types 10 and 217) is keyed by that
// order, not by its shop; "id" names an order only in a known order type (a shop message's id
// is the shop's).
func TestKeyOrderCarryingOnlyID(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantKey   string
		wantOrder string
	}{
		{"type 10 OOrder", `{"appId":1,"type":10,"message":"{\"id\":\"3000000000000000001\",\"shopId\":7,\"activeAt\":\"2016-12-19T23:30:48\"}","shopId":7,"signature":"X"}`,
			"eleme:3000000000000000001", "3000000000000000001"},
		{"type 217, numeric id above 2^53", `{"appId":1,"type":217,"message":"{\"id\":3000000000000000003,\"shopId\":7}","shopId":7,"signature":"X"}`,
			"eleme:3000000000000000003", "3000000000000000003"},
		{"orderId wins over id", `{"appId":1,"type":217,"message":"{\"id\":\"9\",\"orderId\":\"3000000000000000004\"}","shopId":7,"signature":"X"}`,
			"eleme:3000000000000000004", "3000000000000000004"},
		{"shop message with an id", `{"appId":1,"type":93,"message":"{\"id\":968861,\"name\":\"shop\"}","shopId":968861,"signature":"X"}`,
			"eleme:shop:968861", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePush([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			k, err := Key(p)
			if err != nil || k.Key != tt.wantKey || k.OrderID != tt.wantOrder {
				t.Fatalf("Key = %+v, %v; want key %s, order %q", k, err, tt.wantKey, tt.wantOrder)
			}
		})
	}
}
