package service

import (
	"runtime/debug"
	"testing"
)

// The default applies only when GOGC is unset; an operator's GOGC (read by the runtime at start)
// is left alone.
func TestSetGCPercent(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOGC" {
				return v
			}
			return ""
		}
	}
	if !SetGCPercent(env(""), DefaultGCPercent) {
		t.Fatal("GOGC unset: default not applied")
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Fatalf("GOGC unset: collector target %d, want %d", got, DefaultGCPercent)
	}
	for _, v := range []string{"50", "off"} {
		if SetGCPercent(env(v), DefaultGCPercent) {
			t.Errorf("GOGC=%s: default applied over it", v)
		}
		if got := debug.SetGCPercent(100); got != 100 {
			t.Errorf("GOGC=%s: collector target changed to %d", v, got)
		}
	}
}
