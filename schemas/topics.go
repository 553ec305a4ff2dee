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

// Platform names, as they appear in keys, envelopes and events.
const (
	PlatformDianwoda = "dianwoda"
	PlatformEleme    = "eleme"
)

// Key is the Kafka key of every per-order record: "platform:order_id". One key, one partition,
// so per-order order holds end to end.
func Key(platform, orderID string) string { return platform + ":" + orderID }
