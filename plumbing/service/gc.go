package service

import "runtime/debug"

// DefaultGCPercent is the collector's target the ingress and the normalizer run with when GOGC
// is not set: they collect half as often as Go's default of 100. Both have a small, bounded
// live heap (the ingress's bodies by INGRESS_MAX_BODY_MEMORY, the normalizer's batches by
// BATCH_MAX_RECORDS) and their garbage is short-lived, so the memory this costs is bounded too,
// and GOMEMLIMIT, where set, still caps it. Measured in docs/performance-history.md ("Ingress GOGC",
// "Normalizer, GOGC as deployed").
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
