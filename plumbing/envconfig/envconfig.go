// Package envconfig reads a service's typed configuration from environment variables and collects
// every problem at once, so that a wrong value stops the service at start with a message naming
// each variable that is wrong, not just the first.
//
//	l := envconfig.New(getenv)
//	cfg.Brokers = l.List("KAFKA_BROKERS", "127.0.0.1:9092")
//	cfg.Window = l.Duration("BATCH_WINDOW", time.Second)
//	if err := l.Err(); err != nil { ... }
package envconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Loader reads variables through getenv and remembers every problem.
type Loader struct {
	getenv func(string) string
	errs   []error
}

// New returns a Loader reading through getenv (os.Getenv in main, a map in tests).
func New(getenv func(string) string) *Loader { return &Loader{getenv: getenv} }

// Err returns every problem seen so far, joined, or nil.
func (l *Loader) Err() error { return errors.Join(l.errs...) }

// Fail records a problem found by the caller's own validation.
func (l *Loader) Fail(name, format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// String returns the variable, or def when it is unset or empty.
func (l *Loader) String(name, def string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	return def
}

// List returns the comma-separated variable with empty items dropped, or def.
func (l *Loader) List(name, def string) []string {
	var out []string
	for _, s := range strings.Split(l.String(name, def), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// HostPorts is List, and each item must be host:port.
func (l *Loader) HostPorts(name, def string) []string {
	out := l.List(name, def)
	if len(out) == 0 {
		l.Fail(name, "want at least one host:port")
	}
	for _, hp := range out {
		if _, port, err := net.SplitHostPort(hp); err != nil || port == "" {
			l.Fail(name, "%q is not host:port", hp)
		}
	}
	return out
}

// Addr returns a listen address ("host:port" or ":port").
func (l *Loader) Addr(name, def string) string {
	v := l.String(name, def)
	if _, _, err := net.SplitHostPort(v); err != nil {
		l.Fail(name, "%q is not a listen address (host:port or :port)", v)
	}
	return v
}

// Int returns the integer variable, or def; it must lie in [min, max].
func (l *Loader) Int(name string, def, min, max int) int {
	raw := l.String(name, "")
	if raw == "" {
		return def
	}
	v, err := strconv.Atoi(raw)
	if err != nil {
		l.Fail(name, "%q is not an integer", raw)
		return def
	}
	if v < min || v > max {
		l.Fail(name, "%d is outside [%d, %d]", v, min, max)
	}
	return v
}

// Bytes returns a size in bytes, written as a plain integer or with a KiB/MiB/GiB suffix.
func (l *Loader) Bytes(name string, def int64) int64 {
	raw := l.String(name, "")
	if raw == "" {
		return def
	}
	mult := int64(1)
	for _, s := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(raw, s.suffix) {
			mult, raw = s.mult, strings.TrimSuffix(raw, s.suffix)
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil || v <= 0 {
		l.Fail(name, "%q is not a positive size (e.g. 1048576 or 1MiB)", l.getenv(name))
		return def
	}
	return v * mult
}

// Duration returns a Go duration ("250ms", "7d" is not Go syntax: write "168h"); it must be > 0.
func (l *Loader) Duration(name string, def time.Duration) time.Duration {
	raw := l.String(name, "")
	if raw == "" {
		return def
	}
	v, err := time.ParseDuration(raw)
	if err != nil || v <= 0 {
		l.Fail(name, "%q is not a positive duration (e.g. 250ms, 1s, 168h)", raw)
		return def
	}
	return v
}

// DurationIn returns a Go duration, or def; unlike Duration it may be 0, and it must lie in
// [min, max].
func (l *Loader) DurationIn(name string, def, min, max time.Duration) time.Duration {
	raw := l.String(name, "")
	if raw == "" {
		return def
	}
	v, err := time.ParseDuration(raw)
	if err != nil || v < min || v > max {
		l.Fail(name, "%q is not a duration from %v to %v (e.g. 0, 2ms)", raw, min, max)
		return def
	}
	return v
}

// Bool returns the boolean variable, or def.
func (l *Loader) Bool(name string, def bool) bool {
	raw := l.String(name, "")
	if raw == "" {
		return def
	}
	v, err := strconv.ParseBool(raw)
	if err != nil {
		l.Fail(name, "%q is not a boolean", raw)
		return def
	}
	return v
}

// Level returns a zap level name.
func (l *Loader) Level(name, def string) string {
	v := strings.ToLower(l.String(name, def))
	switch v {
	case "debug", "info", "warn", "error":
	default:
		l.Fail(name, "%q is not one of debug, info, warn, error", v)
	}
	return v
}

// Secret is a value that must never reach a log, an error, a metric or a reply: its String,
// GoString, Format and MarshalJSON print "[redacted]" (or nothing when it is empty). Reveal is the
// one way to the value, for the library call that needs it.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer without the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString implements fmt.GoStringer (%#v) without the value.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format prints the redacted form for every verb, %x and %q included.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// MarshalJSON writes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText writes the redacted form (zap, YAML and encoding/xml use it).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Secret returns a secret-bearing variable: name itself, or the content of the file that
// name_FILE points to (a mounted Kubernetes or Docker secret; one trailing newline is dropped).
// Setting both is an error, as is an unreadable file. Errors name the variable, never the value.
func (l *Loader) Secret(name string) Secret {
	v, ok := l.FromFile(name)
	if !ok {
		return ""
	}
	return Secret(v)
}

// FromFile returns the variable name, or the content of the file named by name_FILE, and whether
// either was set. Both set is an error. Use Secret for secret-bearing variables.
func (l *Loader) FromFile(name string) (string, bool) {
	direct := l.getenv(name)
	path := strings.TrimSpace(l.getenv(name + "_FILE"))
	switch {
	case direct != "" && path != "":
		l.Fail(name, "both %s and %s_FILE are set; set one", name, name)
		return "", false
	case path != "":
		b, err := os.ReadFile(path)
		if err != nil {
			l.Fail(name+"_FILE", "read %s: %v", path, errors.Unwrap(err))
			return "", false
		}
		return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), true
	case direct != "":
		return direct, true
	}
	return "", false
}

// Conflict records that the named variables were set together although they exclude each other.
func (l *Loader) Conflict(reason string, names ...string) {
	l.errs = append(l.errs, fmt.Errorf("%s: %s", strings.Join(names, " and "), reason))
}

// SecretList is a comma-separated list of secrets (signing keys, one per rotation), from name or
// the file name_FILE points to, empty items dropped. Errors never hold the values.
func (l *Loader) SecretList(name string) []string {
	v, _ := l.FromFile(name)
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
