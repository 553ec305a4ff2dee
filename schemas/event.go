package schemas

// Kinds of unified status events.
const (
	KindDelivery = "delivery"
	KindOrder    = "order"
	KindRefund   = "refund"
)

// Delivery statuses (contract: "Delivery statuses, and Dianwoda's mapping").
const (
	StatusAwaitingRider    = "awaiting_rider"
	StatusRiderAssigned    = "rider_assigned"
	StatusRiderAtStore     = "rider_at_store"
	StatusPickedUp         = "picked_up"
	StatusDelivered        = "delivered"
	StatusDeliveryFailed   = "delivery_failed"
	StatusDeliveryCanceled = "delivery_canceled"
	// StatusUnknown is any platform value this version does not know; the value itself is
	// carried verbatim in PlatformStatus and Reason.
	StatusUnknown = "unknown"
)

// StatusEvent is the unified status event on orders.status.v1 (and, routed by kind, on
// orders.delivery.v1, orders.lifecycle.v1 and orders.refund.v1). It is carried as JSON with
// CloudEvents 1.0 attributes in the Kafka headers (binary mode; see CloudEvent headers).
type StatusEvent struct {
	// EventID is deterministic: the same platform transition yields the same id however often,
	// and by whichever path, it arrives.
	EventID  string `json:"event_id"`
	Platform string `json:"platform"`
	Kind     string `json:"kind"`
	// OrderID is the platform's order id as a string (Dianwoda: order_original_id; Eleme: orderId).
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
	// PlatformStatus is the platform's own status value, verbatim.
	PlatformStatus string `json:"platform_status"`
	// Terminal is true where Status ends the order's flow for this Kind.
	Terminal   bool      `json:"terminal"`
	OccurredAt Timestamp `json:"occurred_at"`
	ReceivedAt Timestamp `json:"received_at"`

	// Stale marks an event that the order guard refused as the order's current state: it is
	// older than the latest applied event of its kind, or non-terminal after a terminal one.
	Stale bool `json:"stale,omitempty"`

	ShopID string  `json:"shop_id,omitempty"`
	Reason *Reason `json:"reason,omitempty"`
	Actor  *Actor  `json:"actor,omitempty"`
	Rider  *Rider  `json:"rider,omitempty"`
	Refund *Refund `json:"refund,omitempty"`
	Source *Source `json:"source,omitempty"`
}

// Reason carries the platform's reason codes verbatim, known or not.
type Reason struct {
	Code    string `json:"code,omitempty"`
	SubCode string `json:"sub_code,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Actor is who drove the change (Eleme's role 1–9).
type Actor struct {
	Role string `json:"role"`
}

// Rider is the courier. Phone is masked in logs, never in the event.
type Rider struct {
	Code  string `json:"code,omitempty"`
	Name  string `json:"name,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Refund carries an Eleme cancel/refund message's details.
type Refund struct {
	Status string `json:"status,omitempty"`
	Type   string `json:"type,omitempty"`
	// Amount is the refund total as the platform wrote it (a decimal string, exact).
	Amount string       `json:"amount,omitempty"`
	Reason string       `json:"reason,omitempty"`
	Items  []RefundItem `json:"items,omitempty"`
}

// RefundItem is one refunded line.
type RefundItem struct {
	Name     string `json:"name"`
	Quantity string `json:"quantity,omitempty"`
	Price    string `json:"price,omitempty"`
}

// Source says where the event came from on the platform's side.
type Source struct {
	// Type is the platform's message type (Dianwoda "dianwoda.order.status-update", Eleme "12").
	Type string `json:"type,omitempty"`
	// MessageID is Dianwoda's msg_id or Eleme's requestId.
	MessageID string `json:"message_id,omitempty"`
	// DeliveryAttempt is Dianwoda's deliver_times.
	DeliveryAttempt int `json:"delivery_attempt,omitempty"`
}
