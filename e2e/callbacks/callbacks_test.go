package callbacks

import (
	"net/url"
	"testing"
)

// The worked examples of docs/specs/platforms.md §1.2 and §2.2 are the test vectors.
func TestSignWorkedExamples(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{
			name: "dianwoda",
			give: DianwodaSign("test_secret", url.Values{"nonce": {"123456"}, "timestamp": {"1545188246307"}, "type": {DianwodaType}},
				[]byte(`{"content":{"order_original_id":"FTP201511091198","order_status":"abnormal"},"deliver_times":1,"msg_id":"67798ea556724ee499b3aa65a3274047","pub_time":1545188246307}`)),
			want: "76a150656841b906d65cf0a3e3bbf0ecc9653055",
		},
		{
			name: "eleme",
			give: ElemeSign("test_secret", map[string]string{
				"appId": "62933118", "requestId": "10135", "type": "12", "shopId": "968861",
				"timestamp": "1482161482053", "userId": "62864532", "signature": "ignored",
				"message": `{"orderId":"100027500485933656","state":"settled","shopId":968861,"updateTime":1482161481,"role":3}`,
			}),
			want: "CC1586E404AF74522DB25A6283DD804B",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.give != tt.want {
				t.Errorf("sign = %s, want %s", tt.give, tt.want)
			}
		})
	}
}
