package elemeapi

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestSignWorkedExample checks Sign against strings built step by step the way the PHP SDK's
// RpcClient::generate_signature builds them (xiangzhanyou/eleme-openapi-php-sdk
// src/ElemeOpenApi/Protocol/RpcClient.php): array_merge(metas, params), ksort, key "=" json_encode
// (JSON_UNESCAPED_SLASHES|JSON_UNESCAPED_UNICODE), action . token . pairs . secret, MD5,
// strtoupper. The expected digests were computed outside Go (python3 hashlib over the pre-hash
// strings below), with the made-up secret "test_secret" and app_key "test_app_key".
func TestSignWorkedExample(t *testing.T) {
	metas := Metas{AppKey: "test_app_key", Timestamp: 1764468000}
	tests := []struct {
		name     string
		action   string
		params   map[string]json.RawMessage
		wantBase string
		want     string
	}{
		{
			name:     "getPushFailMsg",
			action:   ActionGetPushFailMsg,
			params:   map[string]json.RawMessage{ParamQuery: json.RawMessage(`{"appId":62933118,"pageSize":50}`)},
			wantBase: `eleme.msgNew.getPushFailMsgapp_key="test_app_key"msgQueryRequest={"appId":62933118,"pageSize":50}timestamp=1764468000`,
			want:     "40FF7FFC08E4FA2E4646F0B1B42EFE25",
		},
		{
			name:   "confirmPullMsg",
			action: ActionConfirmPullMsg,
			// Sent with spaces: the signature covers the compact JSON text of the value.
			params:   map[string]json.RawMessage{ParamConfirm: json.RawMessage(`{"appId": 62933118, "msgIds": ["10135", "7637"]}`)},
			wantBase: `eleme.msgNew.confirmPullMsgapp_key="test_app_key"msgConfirmRequest={"appId":62933118,"msgIds":["10135","7637"]}timestamp=1764468000`,
			want:     "7EC6B6D972BF87F7B914ABD249DD0947",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, err := SignBase(tt.action, "", metas, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			if base != tt.wantBase {
				t.Errorf("base\n got %s\nwant %s", base, tt.wantBase)
			}
			got, err := Sign(tt.action, "", metas, tt.params, "test_secret")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Sign = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestNewRequestEnvelope checks the envelope every SDK sends and that the request signs the
// exact bytes it carries.
func TestNewRequestEnvelope(t *testing.T) {
	now := time.Unix(1764468000, 123e6)
	q := orderedObject(map[string]any{FieldAppID: appIDValue("62933118"), FieldPageSize: 50}, FieldAppID, FieldPageSize)
	r, err := NewRequest(ActionGetPushFailMsg, "", "test_app_key", "test_secret", map[string]any{ParamQuery: q}, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Signature != "40FF7FFC08E4FA2E4646F0B1B42EFE25" {
		t.Errorf("signature %s, want the worked example's", r.Signature)
	}
	if r.NOP != "1.0.0" || r.Token != "" || r.Metas.Timestamp != 1764468000 {
		t.Errorf("envelope %+v", r)
	}
	id, ms, ok := strings.Cut(r.ID, "|")
	if !ok || len(id) != 32 || strings.ToUpper(id) != id || ms != "1764468000123" {
		t.Errorf("id %q is not <32 upper hex>|<ms>", r.ID)
	}
	b, _ := json.Marshal(r)
	for _, want := range []string{`"nop":"1.0.0"`, `"action":"eleme.msgNew.getPushFailMsg"`, `"token":""`,
		`"metas":{"app_key":"test_app_key","timestamp":1764468000}`, `"params":{"msgQueryRequest":{"appId":62933118,"pageSize":50}}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("request %s lacks %s", b, want)
		}
	}
}

// TestParseMessagesGolden reads every testdata/getpushfailmsg.*.json answer and compares what
// ParseMessages (or the error) makes of it with its .golden file.
func TestParseMessagesGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/getpushfailmsg.*.json")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var resp Response
			if err := json.Unmarshal(raw, &resp); err != nil {
				t.Fatal(err)
			}
			var got string
			if resp.Error != nil {
				got = "error " + resp.Error.Label() + "\n"
			} else if msgs, err := ParseMessages(resp.Result); err != nil {
				got = "unreadable: " + strings.SplitN(err.Error(), ":", 2)[0] + "\n"
			} else {
				var b strings.Builder
				for _, m := range msgs {
					b.WriteString("id " + m.IDText + " (" + string(m.ID) + ")\n")
					for _, k := range []string{"requestId", "type", "message", "shopId", "userId", "timestamp"} {
						b.WriteString("  " + k + " " + string(m.Fields[k]) + "\n")
					}
				}
				got = b.String() + "count " + itoa(len(msgs)) + "\n"
			}
			golden := strings.TrimSuffix(f, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestParseConfirm(t *testing.T) {
	tests := []struct {
		give string
		want error
	}{
		{"true", nil}, {"null", nil}, {"", nil}, {`{"success":true}`, nil}, {`{}`, nil},
		{"false", ErrNotConfirmed}, {`{"success":false}`, ErrNotConfirmed}, {`"ok"`, ErrBadResult},
	}
	for _, tt := range tests {
		if err := ParseConfirm(json.RawMessage(tt.give)); !errors.Is(err, tt.want) {
			t.Errorf("ParseConfirm(%q) = %v, want %v", tt.give, err, tt.want)
		}
	}
}

func TestLabel(t *testing.T) {
	tests := []struct {
		give error
		want string
	}{
		{&APIError{Code: CodeExceedLimit}, "EXCEED_LIMIT"},
		{&APIError{Code: "SOMETHING_NEW"}, CodeBusinessException},
		{&HTTPError{Status: 503}, "http_5xx"},
		{&HTTPError{Status: 404}, "http_4xx"},
		{ErrNotConfirmed, "not_confirmed"},
		{ErrBadResult, "bad_result"},
		{errors.New("connection refused"), "network"},
	}
	for _, tt := range tests {
		if got := Label(tt.give); got != tt.want {
			t.Errorf("Label(%v) = %s, want %s", tt.give, got, tt.want)
		}
	}
}
