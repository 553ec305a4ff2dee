package dangdang

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// The worked example of docs/specs/platforms.md §3.2 is the test vector.
func TestSignWorkedExample(t *testing.T) {
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, Beijing)
	p := SystemParams(Credentials{AppKey: "2100000000", AppSecret: "test_secret", Session: "SESSIONKEY"}, now)
	got, err := Sign("test_secret", p)
	if err != nil {
		t.Fatal(err)
	}
	if want := "38604B1BA5BA9BCB328453A1DF2DFCD1"; got != want {
		t.Fatalf("sign = %s, want %s", got, want)
	}
}

func TestSignUsesGBKBytes(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		params map[string]string
		want   string
	}{
		// "中" is 0xD6 0xD0 in GBK (E4 B8 AD in UTF-8): the digest is over the GBK bytes.
		{"gbk", "s", map[string]string{"a": "中"}, md5Upper([]byte{'s', 'a', 0xD6, 0xD0, 's'})},
		{"sorted", "k", map[string]string{"b": "2", "a": "1"}, md5Upper([]byte("ka1b2k"))},
		{"sign not signed", "k", map[string]string{"a": "1", "sign": "X"}, md5Upper([]byte("ka1k"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Sign(tt.secret, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("sign = %s, want %s", got, tt.want)
			}
		})
	}
}

func testOrders() []OrderUpdate {
	at := time.Date(2024, 1, 1, 19, 4, 5, 0, time.UTC) // 2024-01-02 03:04:05 in Beijing
	return []OrderUpdate{
		{OrderID: "1719544796", DistriStatus: DistriDelivered, DistriTime: at},
		{OrderID: "1719544797", DistriStatus: DistriFailed, DistriTime: at.Add(90 * time.Second)},
		{OrderID: "a<&>b", DistriStatus: DistriDelivered, DistriTime: at},
	}
}

func TestRequestXMLGolden(t *testing.T) {
	now := time.Date(2024, 1, 1, 19, 4, 5, 0, time.UTC)
	got, err := RequestXML(now, testOrders())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "request.golden.xml"), got)
}

func TestRequestXMLLimits(t *testing.T) {
	now := time.Now()
	many := make([]OrderUpdate, MaxOrders+1)
	for i := range many {
		many[i] = OrderUpdate{OrderID: "1", DistriStatus: 1, DistriTime: now}
	}
	tests := []struct {
		name   string
		orders []OrderUpdate
	}{
		{"none", nil},
		{"101", many},
		{"bad status", []OrderUpdate{{OrderID: "1", DistriStatus: 3, DistriTime: now}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := RequestXML(now, tt.orders); err == nil {
				t.Fatal("want an error")
			}
		})
	}
	if _, err := RequestXML(now, many[:MaxOrders]); err != nil {
		t.Fatalf("100 orders: %v", err)
	}
}

// The whole HTTP request: query, sign and the multipart file part.
func TestNewRequestGolden(t *testing.T) {
	now := time.Date(2024, 1, 1, 19, 4, 5, 0, time.UTC)
	cred := Credentials{AppKey: "2100000000", AppSecret: "test_secret", Session: "SESSIONKEY"}
	req, err := NewRequest(context.Background(), "http://127.0.0.1:8090/openapi/rest?v=1.0", cred, now, testOrders())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "request.golden.query"), []byte(req.URL.RawQuery+"\n"))
	if got := req.URL.Query().Get("sign"); got != "38604B1BA5BA9BCB328453A1DF2DFCD1" {
		t.Errorf("sign = %s", got)
	}
	mt, params, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("content type %q: %v", mt, err)
	}
	mr := multipart.NewReader(req.Body, params["boundary"])
	part, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if part.FormName() != FilePart || part.FileName() != FilePart || part.Header.Get("Content-Type") != "text/xml" {
		t.Errorf("part header = %v", part.Header)
	}
	body, _ := io.ReadAll(part)
	want, _ := os.ReadFile(filepath.Join("testdata", "request.golden.xml"))
	if !bytes.Equal(body, want) {
		t.Errorf("file part differs from request.golden.xml")
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("want one part, next: %v", err)
	}
}

type parsed struct {
	Response    *Response `json:"response,omitempty"`
	APIError    *APIError `json:"api_error,omitempty"`
	Malformed   string    `json:"malformed,omitempty"`
	RateLimited bool      `json:"rate_limited,omitempty"`
	Expired     bool      `json:"subscription_expired,omitempty"`
}

func parseForGolden(body []byte) parsed {
	r, err := ParseResponse(body)
	var p parsed
	var ae *APIError
	switch {
	case errors.As(err, &ae):
		p.APIError, p.RateLimited, p.Expired = ae, ae.RateLimited(), ae.SubscriptionExpired()
	case err != nil:
		p.Malformed = err.Error()
	default:
		p.Response = r
	}
	return p
}

func TestParseResponseGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "responses", "*.xml"))
	if len(files) == 0 {
		t.Fatal("no response fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.MarshalIndent(parseForGolden(body), "", "  ")
			golden(t, strings.TrimSuffix(f, ".xml")+".golden.json", append(got, '\n'))
		})
	}
}

// FuzzParseResponse: any bytes give either results or an error, never a panic; results always
// carry an order id and a code.
func FuzzParseResponse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "responses", "*.xml"))
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseResponse(body)
		if (r == nil) == (err == nil) {
			t.Fatalf("want exactly one of result and error: %v %v", r, err)
		}
		if r != nil {
			if len(r.Orders) == 0 {
				t.Fatal("result without orders")
			}
			for _, o := range r.Orders {
				if o.OrderID == "" || o.Code == "" {
					t.Fatalf("incomplete order result %+v", o)
				}
			}
		}
	})
}
