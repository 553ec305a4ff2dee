package service

import "runtime/debug"

// DefaultGCPercent is the collector's target the normalizer runs with when GOGC is not set: it
// collects half as often as Go's default of 100. Its live heap is small and bounded (its batches,
// by BATCH_MAX_RECORDS) and its garbage short-lived, so the memory this costs is bounded too, and
// GOMEMLIMIT, where set, still caps it. Measured in docs/performance-history.md ("Normalizer, GOGC
// as deployed"). The ingress sets its own (its main.go).
const DefaultGCPercent = 200

// SetGCPercent sets the collector's target to percent unless GOGC is set (an operator's GOGC,
// including "off", always wins). It reports whether it set it. Call it once, from main: the
// setting is the whole process's.
func SetGCPercent(getenv func(string) string, percent int) bool {
	if getenv("GOGC") != "" {
		return false
	}
	debug.SetGCPercent(percent)
	return true
}
