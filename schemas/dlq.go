package schemas

// Bounded dlq_reason codes on callbacks.dlq.v1 (normalizer) and orders.status.dlq.v1
// (dispatcher). A consumer of a DLQ may switch on them; dlq_error carries the detail.
const (
	// DLQReasonDecode: the record's bytes could not be decoded (envelope, body or message JSON).
	DLQReasonDecode = "decode"
	// DLQReasonValidate: decoded, but a required field is missing or inconsistent (e.g. the body's
	// order id differs from the record's key, or no timestamp).
	DLQReasonValidate = "validate"
	// DLQReasonUnsupportedVersion: an envelope version this reader does not know.
	DLQReasonUnsupportedVersion = "unsupported_version"
	// DLQReasonUnsupportedPlatform: a platform this reader does not know.
	DLQReasonUnsupportedPlatform = "unsupported_platform"
	// DLQReasonPanic: the mapper panicked on this record; it was caught and the loop went on.
	DLQReasonPanic = "panic"
	// DLQReasonTooLarge: what the record produced (its unified event, or its own dead-letter
	// copy) is larger than the output topic takes. When the dead-letter copy itself cannot fit,
	// its value is a bounded excerpt of the record's value (header dlq_excerpt says how much of
	// how many bytes); the record stays whole on its origin topic at dlq_partition/dlq_offset.
	DLQReasonTooLarge = "too_large"
	// DLQReasonImplausibleTime: the platform's time of the transition lies outside the window
	// around the record's received_at (normalizer README, "occurred_at"): most likely a value in
	// the wrong unit, which would otherwise poison the order's guard.
	DLQReasonImplausibleTime = "implausible_time"
)

// DLQServiceNormalizer is the dlq_service value of records the normalizer dead-letters.
const DLQServiceNormalizer = "normalizer"

// CESourceNormalizer is the ce_source prefix of unified events; the platform name follows:
// "/orderpipe/normalizer/dianwoda".
const CESourceNormalizer = "/orderpipe/normalizer/"
