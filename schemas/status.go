package schemas

// The statuses below complete the vocabulary of event.go. The contract fixes the delivery
// statuses Dianwoda and Eleme share (event.go); this file defines the rest: Eleme's remaining
// delivery types, its order-lifecycle types and its cancel/refund types. MAPPING.md lists every
// platform value and what it becomes; it is generated from MappingRows (go test -update).

// Delivery statuses beyond the contract's shared ones (Eleme only).
const (
	// StatusSelfDelivery: the merchant delivers by itself (Eleme 71, state selfDelivery). Not
	// terminal: a merchant may still call a carrier afterwards, and no further platform delivery
	// event is promised either way.
	StatusSelfDelivery = "self_delivery"
	// StatusNoMoreDelivery: the platform will not deliver this order any more (Eleme 72). Terminal.
	StatusNoMoreDelivery = "no_more_delivery"
	// StatusDeliveryRefused: the logistics side refused the request (Eleme 73–76). Not terminal:
	// the merchant typically goes on with self-delivery or another request.
	StatusDeliveryRefused = "delivery_refused"
)

// Order-lifecycle statuses (kind "order"; Eleme status-change types 10/217, 12, 14, 15, 17, 18).
const (
	StatusPlaced           = "placed"            // 10 / 217 订单生效
	StatusAccepted         = "accepted"          // 12 商户接单
	StatusCanceled         = "canceled"          // 14 订单被取消 (before acceptance), terminal
	StatusInvalidated      = "invalidated"       // 15 订单置为无效 (after acceptance), terminal
	StatusForceInvalidated = "force_invalidated" // 17 订单强制无效, terminal
	StatusCompleted        = "completed"         // 18 订单完结, terminal
)

// Cancel/refund statuses (kind "refund"; Eleme 20–26, 30–36, 39). A refund flow can repeat on one
// order (a rejection followed by arbitration, a new application after a withdrawal, several
// partial refunds), so only the outcomes that end the order itself are terminal: an approved
// cancel request (23) and a cancel judged valid by arbitration (25).
const (
	StatusCancelRequested           = "cancel_requested"            // 20
	StatusCancelWithdrawn           = "cancel_withdrawn"            // 21
	StatusCancelRejected            = "cancel_rejected"             // 22
	StatusCancelApproved            = "cancel_approved"             // 23, terminal
	StatusCancelArbitrating         = "cancel_arbitrating"          // 24
	StatusCancelArbitrationApproved = "cancel_arbitration_approved" // 25, terminal
	StatusCancelArbitrationRejected = "cancel_arbitration_rejected" // 26
	StatusRefundRequested           = "refund_requested"            // 30
	StatusRefundWithdrawn           = "refund_withdrawn"            // 31
	StatusRefundRejected            = "refund_rejected"             // 32
	StatusRefundApproved            = "refund_approved"             // 33
	StatusRefundArbitrating         = "refund_arbitrating"          // 34
	StatusRefundArbitrationApproved = "refund_arbitration_approved" // 35
	StatusRefundArbitrationRejected = "refund_arbitration_rejected" // 36
	StatusPartialCanceled           = "partial_canceled"            // 39
)

// StatusInfo describes one unified status of one kind.
type StatusInfo struct {
	Kind     string
	Status   string
	Terminal bool
	Meaning  string
	// Rank orders the statuses of a kind along its usual flow (0 for unknown). The order guard
	// uses it only to break a tie of occurred_at: Eleme's times are in seconds, so a late
	// "placed" and the "accepted" after it can share one; the lower rank is then stale. Equal
	// ranks (alternative outcomes of one step) and rank 0 never decide a tie.
	Rank int
}

// Statuses returns every unified status of every kind, in a stable order. A status not listed
// here for its kind is invalid; "unknown" is listed for every kind.
func Statuses() []StatusInfo {
	return []StatusInfo{
		{KindDelivery, StatusAwaitingRider, false, "waiting for a carrier or a rider (also after a rider switch)", 1},
		{KindDelivery, StatusRiderAssigned, false, "a rider took the order, on the way to the store", 2},
		{KindDelivery, StatusRiderAtStore, false, "the rider is at the store", 3},
		{KindDelivery, StatusPickedUp, false, "the rider picked the goods up and is delivering", 4},
		{KindDelivery, StatusDelivered, true, "delivered", 5},
		{KindDelivery, StatusDeliveryFailed, true, "delivery failed (exception)", 5},
		{KindDelivery, StatusDeliveryCanceled, true, "delivery cancelled", 5},
		{KindDelivery, StatusSelfDelivery, false, "the merchant delivers by itself", 2},
		{KindDelivery, StatusNoMoreDelivery, true, "the platform will not deliver any more", 5},
		{KindDelivery, StatusDeliveryRefused, false, "the logistics side refused the delivery request", 1},
		{KindDelivery, StatusUnknown, false, "a platform value this version does not know (carried verbatim)", 0},
		{KindOrder, StatusPlaced, false, "the order is effective, the shop can see it", 1},
		{KindOrder, StatusAccepted, false, "the merchant accepted the order", 2},
		{KindOrder, StatusCanceled, true, "cancelled before acceptance", 3},
		{KindOrder, StatusInvalidated, true, "made invalid after acceptance", 3},
		{KindOrder, StatusForceInvalidated, true, "forcibly made invalid (merchant cancel of an accepted order)", 3},
		{KindOrder, StatusCompleted, true, "the order is completed", 3},
		{KindOrder, StatusUnknown, false, "a platform value this version does not know (carried verbatim)", 0},
		{KindRefund, StatusCancelRequested, false, "the user applied to cancel", 1},
		{KindRefund, StatusCancelWithdrawn, false, "the user withdrew the cancel application", 2},
		{KindRefund, StatusCancelRejected, false, "the merchant rejected the cancel application (arbitration may follow)", 2},
		{KindRefund, StatusCancelApproved, true, "the merchant agreed to cancel", 5},
		{KindRefund, StatusCancelArbitrating, false, "the user asked for arbitration of the cancel", 3},
		{KindRefund, StatusCancelArbitrationApproved, true, "arbitration: the cancel is valid", 5},
		{KindRefund, StatusCancelArbitrationRejected, false, "arbitration: the cancel is invalid", 4},
		{KindRefund, StatusRefundRequested, false, "the user applied for a refund", 1},
		{KindRefund, StatusRefundWithdrawn, false, "the user withdrew the refund application", 2},
		{KindRefund, StatusRefundRejected, false, "the merchant rejected the refund (arbitration may follow)", 2},
		{KindRefund, StatusRefundApproved, false, "the merchant agreed to refund (another refund may follow)", 2},
		{KindRefund, StatusRefundArbitrating, false, "the user asked for arbitration of the refund", 3},
		{KindRefund, StatusRefundArbitrationApproved, false, "arbitration: the refund is valid (another refund may follow)", 4},
		{KindRefund, StatusRefundArbitrationRejected, false, "arbitration: the refund is invalid", 4},
		{KindRefund, StatusPartialCanceled, false, "the merchant cancelled part of the order during fulfilment", 2},
		{KindRefund, StatusUnknown, false, "a platform value this version does not know (carried verbatim)", 0},
	}
}

// LookupStatus returns the StatusInfo of status within kind.
func LookupStatus(kind, status string) (StatusInfo, bool) {
	s, ok := statusIndex[[2]string{kind, status}]
	return s, ok
}

// statusIndex is a read-only index of Statuses, built once.
var statusIndex = func() map[[2]string]StatusInfo {
	m := map[[2]string]StatusInfo{}
	for _, s := range Statuses() {
		m[[2]string{s.Kind, s.Status}] = s
	}
	return m
}()

// StatusRank returns the rank of status within kind (StatusInfo.Rank), 0 when unknown.
func StatusRank(kind, status string) int {
	s, _ := LookupStatus(kind, status)
	return s.Rank
}

// IsTerminal reports whether status ends the order's flow for kind.
func IsTerminal(kind, status string) bool {
	s, _ := LookupStatus(kind, status)
	return s.Terminal
}
