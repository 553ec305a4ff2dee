package schemas

// RawEnvelopeVersion is the version of the RawEnvelope written today.
const RawEnvelopeVersion = 1

// RawEnvelope is the value of a callbacks.raw.v1 record: one platform callback exactly as the
// ingress received it, after its signature was verified. The ingress parses only what it needs
// to verify and to key the record; everything else is the normalizer's job.
type RawEnvelope struct {
	// Version of this envelope's shape; readers refuse versions they do not know.
	Version int `json:"version"`
	// IngressID identifies this receipt (one per accepted HTTP request), for tracing and audit.
	// When the request carried no usable X-Request-Id, its reply's X-Request-Id is this id.
	IngressID string `json:"ingress_id"`
	// Platform is PlatformDianwoda or PlatformEleme.
	Platform string `json:"platform"`
	// OrderID is the order id the record is keyed by, exact (Eleme ids exceed 2^53).
	OrderID string `json:"order_id"`
	// ReceivedAt is when the ingress received the request.
	ReceivedAt Timestamp `json:"received_at"`
	// Query is the request's URL query, as sent (Dianwoda signs type, timestamp and nonce).
	Query map[string][]string `json:"query,omitempty"`
	// Headers holds selected request headers (Content-Type, User-Agent, X-Request-Id, traceparent).
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the request body byte for byte (base64 in JSON, so no byte can change).
	Body []byte `json:"body"`
	// Source says how the callback reached the pipeline: SourcePush (the platform called the
	// ingress; also what an empty value means, so records written before this field existed read
	// as pushes) or SourcePull (the Eleme compensation poller fetched a push the platform failed
	// to deliver, with eleme.msgNew.getPushFailMsg). A pulled record has the same key and the same
	// Body shape as the push of that message, so it maps to the same event_id.
	Source string `json:"source,omitempty"`
}

// RawEnvelope.Source values.
const (
	SourcePush = "push"
	SourcePull = "pull"
)
