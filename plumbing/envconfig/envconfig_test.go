package envconfig

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecretNeverPrints: every way a Secret can be printed, marshalled or logged shows the
// redaction marker, never the value.
func TestSecretNeverPrints(t *testing.T) {
	const value = "hunter2-very-secret"
	s := Secret(value)
	core, logs := observer.New(zap.DebugLevel)
	zap.New(core).Info("config", zap.Any("secret", s), zap.Stringer("stringer", s), zap.Reflect("reflect", struct{ P Secret }{s}))
	j, err := json.Marshal(struct{ P Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{
		fmt.Sprint(s), fmt.Sprintf("%s %v %+v %#v %q %x %X %d", s, s, s, s, s, s, s, s),
		fmt.Sprintf("%+v %#v", struct{ P Secret }{s}, struct{ P Secret }{s}), string(j),
	}
	for _, e := range logs.All() {
		outputs = append(outputs, fmt.Sprint(e.ContextMap()))
	}
	for _, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("secret printed: %s", out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("no redaction marker in %s", out)
		}
	}
	if s.Reveal() != value {
		t.Errorf("Reveal = %q", s.Reveal())
	}
	if Secret("").String() != "" {
		t.Error("an empty secret should print empty")
	}
}

func TestSecretFromVariableOrFile(t *testing.T) {
	file := writeFile(t, "from-file\n")
	tests := []struct {
		name    string
		env     map[string]string
		want    Secret
		wantErr []string
	}{
		{"unset", nil, "", nil},
		{"direct", map[string]string{"PW": "direct-value"}, "direct-value", nil},
		{"file, trailing newline dropped", map[string]string{"PW_FILE": file}, "from-file", nil},
		{"both set", map[string]string{"PW": "direct-value", "PW_FILE": file}, "", []string{"PW", "PW_FILE", "set one"}},
		{"missing file", map[string]string{"PW_FILE": "/nonexistent/pw"}, "", []string{"PW_FILE", "/nonexistent/pw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(envOf(tt.env))
			got := l.Secret("PW")
			if got != tt.want {
				t.Errorf("Secret = %q, want %q", got.Reveal(), tt.want.Reveal())
			}
			err := l.Err()
			if (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("err = %v, want one naming %v", err, tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if err != nil && (strings.Contains(err.Error(), "direct-value") || strings.Contains(err.Error(), "from-file")) {
				t.Errorf("error holds the value: %v", err)
			}
		})
	}
}

func TestSecretList(t *testing.T) {
	file := writeFile(t, "a, b,,c\n")
	l := New(envOf(map[string]string{"KEYS_FILE": file}))
	if got := strings.Join(l.SecretList("KEYS"), "|"); got != "a|b|c" || l.Err() != nil {
		t.Fatalf("SecretList = %q, %v", got, l.Err())
	}
}

// DurationIn takes 0 and the bounds themselves, returns def when unset, and refuses by name what
// is outside the range or not a duration.
func TestDurationIn(t *testing.T) {
	for value, want := range map[string]time.Duration{"": 2 * time.Millisecond, "0": 0, "0s": 0, "1s": time.Second, "750us": 750 * time.Microsecond} {
		l := New(func(string) string { return value })
		if got := l.DurationIn("LINGER", 2*time.Millisecond, 0, time.Second); got != want || l.Err() != nil {
			t.Errorf("LINGER=%q: %v, %v; want %v", value, got, l.Err(), want)
		}
	}
	for _, bad := range []string{"-1ms", "1001ms", "soon", "5"} {
		l := New(func(string) string { return bad })
		if got := l.DurationIn("LINGER", 2*time.Millisecond, 0, time.Second); got != 2*time.Millisecond || l.Err() == nil || !strings.Contains(l.Err().Error(), "LINGER") {
			t.Errorf("LINGER=%q: %v, %v; want the default and an error naming LINGER", bad, got, l.Err())
		}
	}
}
