package sandbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/plumbing/testenv"
)

// nothing is a sandbox that answers 404 to everything.
type nothing struct{}

func (nothing) Handler() http.Handler { return http.NotFoundHandler() }

// runCommand runs a sandbox command whose credentials are names separated by ";" and refused
// when they contain "bad", with TEST_CREDS=env.
func runCommand(ctx context.Context, env string, args []string, out io.Writer) error {
	c := Command[string, nothing]{
		Name: "testsandbox", Addr: "127.0.0.1:0", API: "/api", Item: "cred", ItemForm: "NAME",
		ItemsEnv: "TEST_CREDS", Sep: ";", DemoItems: "demo",
		Parse: func(spec string) ([]string, error) {
			if strings.Contains(spec, "bad") {
				return nil, errors.New("bad credential")
			}
			return strings.FieldsFunc(spec, func(r rune) bool { return r == ';' }), nil
		},
		Key: func(s string) string { return s },
		New: func(...string) nothing { return nothing{} },
	}
	return c.Run(ctx, args, func(k string) string { return map[string]string{"TEST_CREDS": env}[k] }, out)
}

// commandCase is a run of the test command with TEST_CREDS=env and args, and the end of the
// banner or the start of the error it should give.
type commandCase struct {
	name, env string
	args      []string
	want      string
}

func TestCommandRun(t *testing.T) {
	tests := []commandCase{
		{"env and flags", "a;b;", []string{"-cred", "c"}, "creds a,b,c"},
		{"flags only", "", []string{"-cred", "c", "-cred", "d"}, "creds c,d"},
		{"none: the demo", " \n", nil, "creds demo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var out testenv.Buffer
			done := make(chan error, 1)
			go func() { done <- runCommand(ctx, tt.env, tt.args, &out) }()
			banner := regexp.MustCompile(`^testsandbox listening on http://(127\.0\.0\.1:\d+)/api \(admin: /sandbox/\), (.*)\n$`)
			deadline := time.Now().Add(5 * time.Second)
			for banner.FindStringSubmatch(out.String()) == nil && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			m := banner.FindStringSubmatch(out.String())
			if m == nil || m[2] != tt.want {
				cancel()
				t.Fatalf("banner %q, want one ending %q", out.String(), tt.want)
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
	tests := []commandCase{
		{"bad credential", "x;bad", nil, "TEST_CREDS: bad credential"},
		{"unknown flag", "", []string{"-nope"}, "flag provided but not defined: -nope"},
		{"bad address", "", []string{"-addr", "127.0.0.1:-1"}, "listen 127.0.0.1:-1: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runCommand(context.Background(), tt.env, tt.args, &out)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err %v, want one starting %q", err, tt.want)
			}
		})
	}
}
