package sandbox

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer the command writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testCommand() Command {
	return Command{
		Name: "testsandbox", Addr: "127.0.0.1:0", API: "/api",
		Item: "cred", ItemUsage: "a credential", ItemsEnv: "TEST_CREDS", Sep: ";", DemoItems: "demo",
		New: func(spec string) (http.Handler, []string, error) {
			if strings.Contains(spec, "bad") {
				return nil, nil, errors.New("bad credential")
			}
			return http.NotFoundHandler(), strings.FieldsFunc(spec, func(r rune) bool { return r == ';' }), nil
		},
	}
}

func TestCommandRun(t *testing.T) {
	tests := []struct {
		name       string
		env        string
		args       []string
		wantBanner string
	}{
		{"env and flags", "a;b;", []string{"-cred", "c"}, "creds a,b,c"},
		{"flags only", "", []string{"-cred", "c", "-cred", "d"}, "creds c,d"},
		{"none: the demo", " \n", nil, "creds demo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var out syncBuffer
			done := make(chan error, 1)
			getenv := func(k string) string { return map[string]string{"TEST_CREDS": tt.env}[k] }
			go func() { done <- testCommand().Run(ctx, tt.args, getenv, &out) }()
			banner := regexp.MustCompile(`^testsandbox listening on http://(127\.0\.0\.1:\d+)/api \(admin: /sandbox/\), (.*)\n$`)
			deadline := time.Now().Add(5 * time.Second)
			for banner.FindStringSubmatch(out.String()) == nil && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			m := banner.FindStringSubmatch(out.String())
			if m == nil || m[2] != tt.wantBanner {
				cancel()
				t.Fatalf("banner %q, want one ending %q", out.String(), tt.wantBanner)
			}
			resp, err := http.Get("http://" + m[1] + "/")
			if err != nil || resp.StatusCode != http.StatusNotFound {
				t.Errorf("serving: %v %v", resp, err)
			}
			if resp != nil {
				resp.Body.Close()
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run after stop: %v", err)
			}
		})
	}
}

func TestCommandRunRefuses(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		args    []string
		wantErr string
	}{
		{"bad credential", "x;bad", nil, "TEST_CREDS: bad credential"},
		{"unknown flag", "", []string{"-nope"}, "flag provided but not defined: -nope"},
		{"bad address", "", []string{"-addr", "127.0.0.1:-1"}, "listen 127.0.0.1:-1: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return map[string]string{"TEST_CREDS": tt.env}[k] }
			var out bytes.Buffer
			err := testCommand().Run(context.Background(), tt.args, getenv, &out)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want one starting %q", err, tt.wantErr)
			}
		})
	}
}
