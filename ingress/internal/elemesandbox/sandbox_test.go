package elemesandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/ingress/internal/elemeapi"
	"github.com/orderpipe/pipeline/plumbing/sandbox/sandboxtest"
)

var testApp = App{AppID: "62933118", AppKey: "test_app_key", Secret: "test_secret"}

const push12 = `{"appId":62933118,"requestId":"10135","type":12,"message":"{\"orderId\":\"100027500485933656\",\"state\":\"settled\",\"shopId\":968861,\"updateTime\":1482161481,\"role\":3}","shopId":968861,"timestamp":1482161482053,"signature":"A6A1E1FD9D880E184EEC8BFF19DE45D6","userId":62864532}`

func start(t *testing.T) (*Sandbox, *elemeapi.Client, elemeapi.App) {
	t.Helper()
	sb := New(testApp)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	return sb, &elemeapi.Client{URL: srv.URL, Timeout: 2 * time.Second}, elemeapi.App{AppID: testApp.AppID, AppKey: testApp.AppKey, Secret: testApp.Secret}
}

func TestPullAndConfirm(t *testing.T) {
	sb, c, app := start(t)
	ctx := context.Background()
	ids, err := sb.Hold("62933118", json.RawMessage(push12))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.GetPushFailMsg(ctx, app, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].IDText != ids[0] {
		t.Fatalf("pulled %+v, want the held message %s", msgs, ids[0])
	}
	if _, signed := msgs[0].Fields["signature"]; signed {
		t.Error("a pulled message carries the push's signature")
	}
	if string(msgs[0].Fields["timestamp"]) != "1482161482053" || string(msgs[0].Fields["userId"]) != "62864532" {
		t.Errorf("fields changed: %s", msgs[0].Fields)
	}
	// Not confirmed: pulled again.
	again, err := c.GetPushFailMsg(ctx, app, 50)
	if err != nil || len(again) != 1 {
		t.Fatalf("second pull: %v %v", again, err)
	}
	if err := c.ConfirmPullMsg(ctx, app, []json.RawMessage{msgs[0].ID}); err != nil {
		t.Fatal(err)
	}
	if left, err := c.GetPushFailMsg(ctx, app, 50); err != nil || len(left) != 0 {
		t.Fatalf("after confirm: %v %v", left, err)
	}
	if cs := sb.Confirms(); len(cs) != 1 || cs[0].Outcome != "ok" || cs[0].MsgIDs[0] != ids[0] {
		t.Errorf("confirms %+v", cs)
	}
}

func TestPageSize(t *testing.T) {
	sb, c, app := start(t)
	for range 5 {
		if _, err := sb.Hold("62933118", json.RawMessage(push12)); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := c.GetPushFailMsg(context.Background(), app, 2)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("%d messages, %v; want 2", len(msgs), err)
	}
	if _, err := c.GetPushFailMsg(context.Background(), app, elemeapi.MaxPageSize+1); Label(err) != elemeapi.CodeValidationFailed {
		t.Errorf("page over the max: %v", err)
	}
}

func Label(err error) string {
	if err == nil {
		return "nil"
	}
	return elemeapi.Label(err)
}

// TestStrictProtocol: every departure from the protocol is refused with Eleme's code.
func TestStrictProtocol(t *testing.T) {
	_, c, app := start(t)
	ctx := context.Background()
	bad := app
	bad.Secret = "wrong"
	if _, err := c.GetPushFailMsg(ctx, bad, 10); Label(err) != elemeapi.CodeInvalidSignature {
		t.Errorf("wrong secret: %v", err)
	}
	unknown := app
	unknown.AppKey = "nobody"
	if _, err := c.GetPushFailMsg(ctx, unknown, 10); Label(err) != elemeapi.CodeUnauthorized {
		t.Errorf("unknown app_key: %v", err)
	}
	other := app
	other.AppID = "1"
	if _, err := c.GetPushFailMsg(ctx, other, 10); Label(err) != elemeapi.CodePermissionDenied {
		t.Errorf("appId of another app: %v", err)
	}
	if _, err := c.Call(ctx, app, elemeapi.ActionGetPushFailMsg, "some-token", map[string]any{elemeapi.ParamQuery: map[string]any{"appId": 62933118}}); Label(err) != elemeapi.CodeValidationFailed {
		t.Errorf("non-empty token: %v", err)
	}
	skewed := &elemeapi.Client{URL: c.URL, Now: func() time.Time { return time.Now().Add(-time.Hour) }}
	if _, err := skewed.GetPushFailMsg(ctx, app, 10); Label(err) != elemeapi.CodeInvalidTimestamp {
		t.Errorf("old timestamp: %v", err)
	}
	// A request whose params were changed after signing.
	r, _ := elemeapi.NewRequest(elemeapi.ActionGetPushFailMsg, "", app.AppKey, app.Secret, map[string]any{elemeapi.ParamQuery: map[string]any{"appId": 62933118, "pageSize": 5}}, time.Now())
	r.Params[elemeapi.ParamQuery] = json.RawMessage(`{"appId":62933118,"pageSize":6}`)
	if code := post(t, c.URL, r); code != elemeapi.CodeInvalidSignature {
		t.Errorf("tampered params: %s", code)
	}
	r2, _ := elemeapi.NewRequest(elemeapi.ActionGetPushFailMsg, "", app.AppKey, app.Secret, map[string]any{elemeapi.ParamQuery: map[string]any{"appId": 62933118}}, time.Now())
	r2.ID = "not-an-sdk-id"
	if code := post(t, c.URL, r2); code != elemeapi.CodeIllegalRequest {
		t.Errorf("bad id: %s", code)
	}
}

func post(t *testing.T, url string, r elemeapi.Request) string {
	t.Helper()
	b, _ := json.Marshal(r)
	resp, err := http.Post(url+elemeapi.APIPath, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out elemeapi.Response
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if out.Error == nil {
		return "none"
	}
	return out.Error.Code
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		fault     Fault
		action    string
		wantLabel string
		confirmed bool // for confirm faults: whether the message left the sandbox
	}{
		{Fault{Kind: FaultExceedLimit}, elemeapi.ActionGetPushFailMsg, elemeapi.CodeExceedLimit, false},
		{Fault{Kind: FaultError, Code: "SERVER_ERROR"}, elemeapi.ActionGetPushFailMsg, elemeapi.CodeServerError, false},
		{Fault{Kind: FaultHTTP5xx}, elemeapi.ActionGetPushFailMsg, "http_5xx", false},
		{Fault{Kind: FaultTimeout, DelayMS: 5000}, elemeapi.ActionGetPushFailMsg, "timeout", false},
		{Fault{Kind: FaultConfirmFail}, elemeapi.ActionConfirmPullMsg, elemeapi.CodeServerError, false},
		{Fault{Kind: FaultConfirmFalse}, elemeapi.ActionConfirmPullMsg, "not_confirmed", false},
		{Fault{Kind: FaultConfirmLost}, elemeapi.ActionConfirmPullMsg, "http_5xx", true},
	}
	for _, tt := range tests {
		t.Run(tt.fault.Kind, func(t *testing.T) {
			sb, c, app := start(t)
			c.Timeout = 300 * time.Millisecond
			ids, _ := sb.Hold("62933118", json.RawMessage(push12))
			f := tt.fault
			f.Times = 1
			if err := sb.Inject(f); err != nil {
				t.Fatal(err)
			}
			var err error
			if tt.action == elemeapi.ActionGetPushFailMsg {
				_, err = c.GetPushFailMsg(ctx, app, 10)
			} else {
				err = c.ConfirmPullMsg(ctx, app, []json.RawMessage{json.RawMessage(`"` + ids[0] + `"`)})
			}
			if Label(err) != tt.wantLabel {
				t.Errorf("error %v (label %s), want %s", err, Label(err), tt.wantLabel)
			}
			if tt.wantLabel == elemeapi.CodeExceedLimit && !elemeapi.RateLimited(err) {
				t.Error("EXCEED_LIMIT not seen as rate limited")
			}
			if got := len(sb.HeldMessages("")) == 0; got != tt.confirmed {
				t.Errorf("confirmed = %v, want %v", got, tt.confirmed)
			}
			// The fault was for one call: the next one works.
			if _, err := c.GetPushFailMsg(ctx, app, 10); err != nil {
				t.Errorf("after the fault: %v", err)
			}
		})
	}
}

// TestAdminContract pins the admin routes the e2e harness and the elemepull tests call; a
// confirm fault is armed for confirmPullMsg whatever action it names.
func TestAdminContract(t *testing.T) {
	sandboxtest.Run(t, sandboxtest.Contract{
		Handler: New(testApp).Handler(),
		Fault:   `{"kind":"confirm_lost","app":"62933118","times":2}`,
		Echo:    "{\n  \"kind\": \"confirm_lost\",\n  \"app\": \"62933118\",\n  \"times\": 2\n}\n",
		Armed:   "[\n  {\n    \"kind\": \"confirm_lost\",\n    \"action\": \"eleme.msgNew.confirmPullMsg\",\n    \"app\": \"62933118\",\n    \"times\": 2\n  }\n]\n",
		Stats:   "{\n  \"calls\": 0,\n  \"calls_by_outcome\": {},\n  \"held\": 0,\n  \"pulled\": 0,\n  \"confirmed\": 0\n}\n",
	})
}
