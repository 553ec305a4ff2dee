package schemas

// CloudEvents 1.0 attributes carried as Kafka headers (Kafka protocol binding, binary mode).
const (
	HeaderCESpecVersion = "ce_specversion"
	HeaderCEID          = "ce_id"
	HeaderCEType        = "ce_type"
	HeaderCESource      = "ce_source"
	HeaderCETime        = "ce_time"
	HeaderContentType   = "content-type"

	CESpecVersion = "1.0"
	// CETypeStatus is ce_type of a unified status event.
	CETypeStatus = "com.orderpipe.order.status.v1"
)

// Dead-letter headers, on callbacks.dlq.v1 and orders.status.dlq.v1. The value and key are the
// source record's, unchanged.
const (
	HeaderDLQReason    = "dlq_reason"    // a short, bounded reason code, e.g. "decode", "validate", "panic"
	HeaderDLQError     = "dlq_error"     // the error text
	HeaderDLQTopic     = "dlq_topic"     // origin topic
	HeaderDLQPartition = "dlq_partition" // origin partition, decimal
	HeaderDLQOffset    = "dlq_offset"    // origin offset, decimal
	HeaderDLQService   = "dlq_service"   // the service that dead-lettered it
	HeaderDLQTime      = "dlq_time"      // when, TimeLayout
	// HeaderDLQExcerpt is set only on a dead letter too large for its topic (reason too_large):
	// "<excerpt bytes>/<record bytes>". The value is then the first excerpt bytes of the source
	// record's value and the source record's own headers are dropped; the whole record stays
	// on its origin topic (dlq_topic, dlq_partition, dlq_offset).
	HeaderDLQExcerpt = "dlq_excerpt"
)

// HeaderTraceparent carries W3C trace context across Kafka hops.
const HeaderTraceparent = "traceparent"
