package schemas

// Default topic names. Every one is configurable; a newcomer who changes nothing gets these.
const (
	TopicRaw            = "callbacks.raw.v1"
	TopicRawDLQ         = "callbacks.dlq.v1"
	TopicStatus         = "orders.status.v1"
	TopicDelivery       = "orders.delivery.v1"
	TopicLifecycle      = "orders.lifecycle.v1"
	TopicRefund         = "orders.refund.v1"
	TopicDangdangResult = "dangdang.results.v1"
	TopicStatusDLQ      = "orders.status.dlq.v1"
)

// RawMaxMessageBytes is the max.message.bytes of callbacks.raw.v1 and callbacks.dlq.v1. A raw
// envelope carries the callback body in base64 (4/3 of its size) plus the query and headers, so a
// body at the ingress's default limit (1 MiB) makes a record of about 1.4 MiB: over the broker's
// default of 1 MiB. Topics created by the services, compose and the Kubernetes Job set this.
const RawMaxMessageBytes = 2 << 20

// Platform names, as they appear in keys, envelopes and events.
const (
	PlatformDianwoda = "dianwoda"
	PlatformEleme    = "eleme"
)

// Key is the Kafka key of every per-order record: "platform:order_id". One key, one partition,
// so per-order order holds end to end.
func Key(platform, orderID string) string { return platform + ":" + orderID }
