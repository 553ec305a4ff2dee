package elemepull

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/ingress/internal/eleme"
	"github.com/orderpipe/pipeline/ingress/internal/elemeapi"
)

var update = flag.Bool("update", false, "rewrite schemas/testdata/raw-envelope.eleme-pull.json")

var testApp = elemeapi.App{AppID: "62933118", AppKey: "test_app_key", Secret: "test_secret"}

func message(t *testing.T, raw string) elemeapi.Message {
	t.Helper()
	msgs, err := elemeapi.ParseMessages(json.RawMessage("[" + raw + "]"))
	if err != nil {
		t.Fatal(err)
	}
	return msgs[0]
}

// TestPushBody: a pulled message becomes a push body that verifies with the app's secret and
// is keyed exactly as that push is keyed by the ingress.
func TestPushBody(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		push    string // the push Eleme would have sent
		wantKey string
	}{
		{
			name:    "order status, appId absent in the message",
			give:    `{"msgId":"9000000000000000001","requestId":"10135","type":12,"message":"{\"orderId\":\"100027500485933656\",\"state\":\"settled\",\"shopId\":968861,\"updateTime\":1482161481,\"role\":3}","shopId":968861,"userId":62864532,"timestamp":1482161482053,"orderId":"100027500485933656"}`,
			push:    `{"appId":62933118,"requestId":"10135","type":12,"message":"{\"orderId\":\"100027500485933656\",\"state\":\"settled\",\"shopId\":968861,\"updateTime\":1482161481,\"role\":3}","shopId":968861,"timestamp":1482161482053,"userId":62864532}`,
			wantKey: "eleme:100027500485933656",
		},
		{
			name:    "refund, string type, user id above 2^53",
			give:    `{"msgId":7,"appId":62933118,"requestId":"7637","type":"30","message":"{\"orderId\":\"1201961795738011871\",\"refundStatus\":\"applied\",\"updateTime\":1508419376}","shopId":150008082,"userId":"5486031036067039666","timestamp":1481694496373}`,
			push:    `{"appId":62933118,"requestId":"7637","type":"30","message":"{\"orderId\":\"1201961795738011871\",\"refundStatus\":\"applied\",\"updateTime\":1508419376}","shopId":150008082,"userId":"5486031036067039666","timestamp":1481694496373}`,
			wantKey: "eleme:1201961795738011871",
		},
		{
			name:    "shop message without an order",
			give:    `{"msgId":"8","requestId":"9","type":91,"message":"{\"shopId\":968861,\"status\":1}","shopId":968861,"userId":1,"timestamp":1482161482053}`,
			push:    `{"appId":62933118,"requestId":"9","type":91,"message":"{\"shopId\":968861,\"status\":1}","shopId":968861,"userId":1,"timestamp":1482161482053}`,
			wantKey: "eleme:shop:968861",
		},
	}
	v := eleme.NewVerifier(map[string][]string{testApp.AppID: {testApp.Secret}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, p, err := PushBody(testApp, message(t, tt.give))
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(p); err != nil {
				t.Fatalf("rebuilt body %s does not verify: %v", body, err)
			}
			k, err := eleme.Key(p)
			if err != nil || k.Key != tt.wantKey {
				t.Fatalf("key %q (%v), want %q", k.Key, err, tt.wantKey)
			}
			// Same signing base as the push itself: the same members, the same values.
			want, err := eleme.ParsePush([]byte(tt.push))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.AppendBase(nil), want.AppendBase(nil)) {
				t.Errorf("base\n got %s\nwant %s", p.AppendBase(nil), want.AppendBase(nil))
			}
			wk, _ := eleme.Key(want)
			if wk != k {
				t.Errorf("key %+v, the push's %+v", k, wk)
			}
		})
	}
}

// TestPullGolden writes (with -update) and checks the raw-envelope golden of a pulled message,
// which the normalizer's contract test maps to the same event as the push golden (received at
// the same moment, so the whole event is the same, not only its event_id).
func TestPullGolden(t *testing.T) {
	p, err := New(Config{Apps: []elemeapi.App{testApp}, API: nil, Writer: nil})
	if err == nil || p != nil {
		t.Fatal("New accepted a config without API and Writer")
	}
	pl := &Poller{c: Config{
		Now:   func() time.Time { return time.Date(2016, 12, 19, 15, 31, 23, 123e6, time.UTC) },
		NewID: func() string { return "01JDQ4Y7RZ3N8X2V5K9M1C6B4B" },
	}}
	msg := message(t, `{"msgId":"9000000000000000001","requestId":"10135","type":12,"message":"{\"orderId\":\"100027500485933656\",\"state\":\"settled\",\"shopId\":968861,\"updateTime\":1482161481,\"role\":3}","shopId":968861,"userId":62864532,"timestamp":1482161482053,"orderId":"100027500485933656"}`)
	rec, err := pl.record(testApp, msg)
	if err != nil {
		t.Fatal(err)
	}
	var pretty map[string]any
	_ = json.Unmarshal(rec.Value, &pretty)
	got, _ := json.MarshalIndent(pretty, "", "  ")
	got = append(got, '\n')
	const golden = "../../../schemas/testdata/raw-envelope.eleme-pull.json"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if string(rec.Key) != "eleme:100027500485933656" {
		t.Errorf("key %s", rec.Key)
	}
}
