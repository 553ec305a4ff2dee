package routing

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Shop is one Dangdang shop's credentials and delivery limits.
type Shop struct {
	Name      string `yaml:"-"`
	AppKey    string `yaml:"app_key"`
	AppSecret string `yaml:"app_secret"`
	// AppSecretEnv names an environment variable holding the secret, so it stays out of files.
	AppSecretEnv string `yaml:"app_secret_env"`
	Session      string `yaml:"session"`
	SessionEnv   string `yaml:"session_env"`
	// AllowSuccessToFailure: Dangdang lets this shop turn delivered into failed.
	AllowSuccessToFailure bool `yaml:"allow_success_to_failure"`
	// RatePerSecond and Burst bound the shop's calls (golang.org/x/time/rate); defaults 10 and 10.
	RatePerSecond float64 `yaml:"rate_per_second"`
	Burst         int     `yaml:"burst"`
	// Concurrency is the most calls in flight for the shop; default 2.
	Concurrency int `yaml:"concurrency"`
}

type shopsFile struct {
	Shops map[string]*Shop `yaml:"shops"`
}

// LoadShops reads the shops configuration: spec is inline YAML/JSON (it starts with "{" or
// contains "shops:") or a file path; empty means def. Secrets may come from environment
// variables named by app_secret_env / session_env, read through getenv.
func LoadShops(spec string, def []byte, getenv func(string) string) (map[string]*Shop, error) {
	data := def
	switch s := strings.TrimSpace(spec); {
	case s == "":
	case strings.HasPrefix(s, "{") || strings.Contains(s, "shops:"):
		data = []byte(s)
	default:
		b, err := os.ReadFile(s)
		if err != nil {
			return nil, fmt.Errorf("DANGDANG_SHOPS: %w", err)
		}
		data = b
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f shopsFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("DANGDANG_SHOPS: %w", err)
	}
	if len(f.Shops) == 0 {
		return nil, errors.New("DANGDANG_SHOPS: no shops")
	}
	names := make([]string, 0, len(f.Shops))
	for n := range f.Shops {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		s := f.Shops[n]
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("DANGDANG_SHOPS: shop %q: %s", n, fmt.Sprintf(format, args...)))
		}
		if s == nil {
			fail("empty entry")
			continue
		}
		s.Name = n
		resolve := func(field string, val *string, env string) {
			if env != "" {
				if *val != "" {
					fail("set %s or %s_env, not both", field, field)
				}
				*val = getenv(env)
				if *val == "" {
					fail("%s_env: environment variable %s is empty", field, env)
				}
			}
			if *val == "" {
				fail("%s is required", field)
			}
		}
		if s.AppKey == "" {
			fail("app_key is required")
		}
		resolve("app_secret", &s.AppSecret, s.AppSecretEnv)
		resolve("session", &s.Session, s.SessionEnv)
		if s.RatePerSecond == 0 {
			s.RatePerSecond = 10
		}
		if s.Burst == 0 {
			s.Burst = 10
		}
		if s.Concurrency == 0 {
			s.Concurrency = 2
		}
		if s.RatePerSecond < 0 || s.Burst < 1 || s.Concurrency < 1 {
			fail("rate_per_second, burst and concurrency must be positive")
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f.Shops, nil
}
