package schemas

// Outcomes of one Dangdang write-back for one order (DangdangResult.Outcome).
const (
	// DangdangAccepted: Dangdang answered orderOperCode 0 for the order.
	DangdangAccepted = "accepted"
	// DangdangRejected: Dangdang answered a non-zero orderOperCode (or a final call error) for the order.
	DangdangRejected = "rejected"
	// DangdangSkipped: nothing was sent for the order on purpose (e.g. failed → delivered, which
	// Dangdang refuses, or delivered → failed on a shop not allowed to); Reason says why.
	DangdangSkipped = "skipped"
	// DangdangDeadLettered: the write-back could not be completed (retries exhausted, unknown
	// shop); the source event went to orders.status.dlq.v1 with the reason.
	DangdangDeadLettered = "dead_lettered"
)

// DangdangResult is the value of a dangdang.results.v1 record, keyed by the Dangdang order id:
// one record per order per write-back (dangdang.orders.distristatus.update), saying what was sent,
// what Dangdang answered for that order, and which unified events it covered. A skipped
// transition is recorded here too, so nothing is silently lost.
type DangdangResult struct {
	// DangdangOrderID is the Dangdang orderID, derived from the event's order_id by the routing rule.
	DangdangOrderID string `json:"dangdang_order_id"`
	// Shop names the configured Dangdang shop (its app_key's configuration name), never a secret.
	Shop string `json:"shop"`
	// Platform and OrderID identify the source order of the unified events.
	Platform string `json:"platform,omitempty"`
	OrderID  string `json:"order_id,omitempty"`
	// Status is the unified status that was (or would have been) written back.
	Status string `json:"status,omitempty"`
	// DistriStatus is the distriStatus sent: "1" delivered, "2" failed; empty when skipped.
	DistriStatus string `json:"distri_status,omitempty"`
	// DistriTime is the distriTime sent, as Dangdang got it (yyyy-MM-dd HH:mm:ss, GMT+8).
	DistriTime string `json:"distri_time,omitempty"`
	// OrderOperCode and OrderOperation are Dangdang's per-order answer, verbatim ("0", "操作成功!").
	OrderOperCode  string `json:"order_oper_code,omitempty"`
	OrderOperation string `json:"order_operation,omitempty"`
	// EventIDs are the unified event ids this write-back covered (one order appears once per call,
	// with its latest state, so several events may collapse into one write-back).
	EventIDs []string `json:"event_ids"`
	// Outcome is DangdangAccepted, DangdangRejected, DangdangSkipped or DangdangDeadLettered.
	Outcome string `json:"outcome"`
	// Reason is a short code or text saying why a write-back was rejected or skipped.
	Reason string `json:"reason,omitempty"`
	// At is when the outcome became known (the response arrived, or the skip was decided).
	At Timestamp `json:"at"`
}
