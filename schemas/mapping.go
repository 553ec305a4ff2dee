package schemas

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// DianwodaStatusUpdate is the message type (query parameter "type") of a Dianwoda status callback.
const DianwodaStatusUpdate = "dianwoda.order.status-update"

var dianwodaStatus = map[string]string{
	"created":    StatusAwaitingRider,
	"dispatched": StatusRiderAssigned,
	"arrived":    StatusRiderAtStore,
	"obtained":   StatusPickedUp,
	"completed":  StatusDelivered,
	"abnormal":   StatusDeliveryFailed,
	"canceled":   StatusDeliveryCanceled,
}

// DianwodaStatus maps a Dianwoda order_status to the unified delivery status. Dianwoda's status
// is decided by order_status alone; action_code and action_sub_code (known or not) are carried
// in the event's reason and never change the status, so a new code never fails a callback.
// An unknown order_status is StatusUnknown.
func DianwodaStatus(orderStatus string) string {
	if s, ok := dianwodaStatus[orderStatus]; ok {
		return s
	}
	return StatusUnknown
}

// ElemeTypeInfo is what one Eleme push type becomes.
type ElemeTypeInfo struct {
	Type    int
	Kind    string
	Status  string
	Meaning string
}

var elemeTypes = func() map[int]ElemeTypeInfo {
	m := map[int]ElemeTypeInfo{}
	add := func(kind, status, meaning string, types ...int) {
		for _, t := range types {
			m[t] = ElemeTypeInfo{Type: t, Kind: kind, Status: status, Meaning: meaning}
		}
	}
	add(KindOrder, StatusPlaced, "订单生效 order effective (10 retired 2023-09-30; 217 core fields)", 10, 217)
	add(KindOrder, StatusAccepted, "商户接单 merchant accepted", 12)
	add(KindOrder, StatusCanceled, "订单被取消 cancelled before acceptance", 14)
	add(KindOrder, StatusInvalidated, "订单置为无效 made invalid after acceptance", 15)
	add(KindOrder, StatusForceInvalidated, "订单强制无效 forcibly made invalid", 17)
	add(KindOrder, StatusCompleted, "订单完结 completed", 18)
	add(KindRefund, StatusCancelRequested, "user applies to cancel", 20)
	add(KindRefund, StatusCancelWithdrawn, "user withdraws the cancel application", 21)
	add(KindRefund, StatusCancelRejected, "merchant rejects the cancel", 22)
	add(KindRefund, StatusCancelApproved, "merchant agrees to cancel", 23)
	add(KindRefund, StatusCancelArbitrating, "user asks for arbitration (cancel)", 24)
	add(KindRefund, StatusCancelArbitrationApproved, "arbitration: cancel valid", 25)
	add(KindRefund, StatusCancelArbitrationRejected, "arbitration: cancel invalid", 26)
	add(KindRefund, StatusRefundRequested, "user applies for a refund", 30)
	add(KindRefund, StatusRefundWithdrawn, "user withdraws the refund application", 31)
	add(KindRefund, StatusRefundRejected, "merchant rejects the refund", 32)
	add(KindRefund, StatusRefundApproved, "merchant agrees to refund", 33)
	add(KindRefund, StatusRefundArbitrating, "user asks for arbitration (refund)", 34)
	add(KindRefund, StatusRefundArbitrationApproved, "arbitration: refund valid", 35)
	add(KindRefund, StatusRefundArbitrationRejected, "arbitration: refund invalid", 36)
	add(KindRefund, StatusPartialCanceled, "商户售中部分取消 merchant partial cancel", 39)
	add(KindDelivery, StatusAwaitingRider, "待分配配送商 waiting for a carrier", 51)
	add(KindDelivery, StatusAwaitingRider, "待分配配送员 waiting for a courier", 52)
	add(KindDelivery, StatusRiderAssigned, "courier assigned, on the way to pick up", 53)
	add(KindDelivery, StatusRiderAtStore, "courier at the shop", 54)
	add(KindDelivery, StatusPickedUp, "courier picked up, delivering", 55)
	add(KindDelivery, StatusDelivered, "配送成功 delivered", 56)
	add(KindDelivery, StatusDeliveryCanceled, "delivery cancelled by the merchant", 57)
	add(KindDelivery, StatusDeliveryCanceled, "delivery cancelled by the user", 58)
	add(KindDelivery, StatusDeliveryCanceled, "delivery cancelled by the logistics system", 59)
	for t, why := range map[int]string{
		60: "called courier too late", 61: "food not ready", 62: "merchant interrupted",
		63: "user does not answer", 64: "user refund", 65: "wrong address", 66: "out of area",
		67: "courier marked exception", 68: "system marked exception", 69: "other", 70: "timeout marked exception",
	} {
		add(KindDelivery, StatusDeliveryFailed, "delivery failed: "+why, t)
	}
	add(KindDelivery, StatusSelfDelivery, "自行配送 self-delivery", 71)
	add(KindDelivery, StatusNoMoreDelivery, "不再配送 no longer delivering", 72)
	for t, why := range map[int]string{73: "online payment only", 74: "out of area", 75: "requested too late", 76: "system error"} {
		add(KindDelivery, StatusDeliveryRefused, "logistics refused: "+why, t)
	}
	return m
}()

// ElemeType returns what Eleme push type t becomes; ok is false for a type this version does
// not map (it becomes StatusUnknown, with its kind guessed from the message's shape).
func ElemeType(t int) (ElemeTypeInfo, bool) {
	i, ok := elemeTypes[t]
	return i, ok
}

var elemeDeliveryState = map[string]string{
	"tobeAssignedMerchant": StatusAwaitingRider,
	"tobeAssignedCourier":  StatusAwaitingRider,
	"tobeFetched":          StatusRiderAssigned,
	"arrived":              StatusRiderAtStore,
	"delivering":           StatusPickedUp,
	"completed":            StatusDelivered,
	"exception":            StatusDeliveryFailed,
	"cancelled":            StatusDeliveryCanceled,
	"selfDelivery":         StatusSelfDelivery,
	"noMoreDelivery":       StatusNoMoreDelivery,
	"reject":               StatusDeliveryRefused,
}

// ElemeDeliveryState maps an Eleme delivery `state` (OState) to the unified delivery status. It
// is used for delivery messages of a type this version does not know; known types map by type.
func ElemeDeliveryState(state string) string {
	if s, ok := elemeDeliveryState[state]; ok {
		return s
	}
	return StatusUnknown
}

// MappingRow is one row of the mapping table (MAPPING.md): a platform value and the unified
// kind, status and terminal flag it becomes.
type MappingRow struct {
	Platform string
	// Dianwoda match: order_status, action_code, action_sub_code ("" = any / none).
	OrderStatus, ActionCode, ActionSubCode string
	// Eleme match: the push type (0 = any other type), or a delivery state for unknown types.
	ElemeType  int
	ElemeState string
	Kind       string
	Status     string
	Terminal   bool
	Meaning    string
}

// DianwodaSeedRows are the (order_status, action_code, action_sub_code, action_detail) rows of
// the Dianwoda status-update page, in its order.
func DianwodaSeedRows() [][4]string {
	return [][4]string{
		{"created", "rider_switch", "", "骑手转单"},
		{"dispatched", "rider_dispatch", "", "骑手接单"},
		{"arrived", "rider_arrive", "", "骑手到店"},
		{"obtained", "rider_obtain", "", "骑手离店"},
		{"completed", "customer_sign", "", "货品送达"},
		{"abnormal", "customer_sign_abnormal", "customer_reject", "签收异常 - 客户拒收"},
		{"abnormal", "customer_sign_abnormal", "customer_not_connectable", "签收异常 - 联系不到客户"},
		{"abnormal", "customer_sign_abnormal", "other", "签收异常 - 系统检测或其他特殊原因"},
		{"canceled", "rider_cancel", "rider_at_merchant_request", "骑手取消订单 - 商家要求取消"},
		{"canceled", "customerservice_cancel", "customerservice_at_merchant_request", "点我达客服关闭订单 - 商家原因"},
		{"canceled", "platform_cancel", "platform_for_dispatch_timeout", "点我达系统关闭订单 - 派单超时"},
		{"canceled", "platform_cancel", "platform_for_arrive_timeout", "点我达系统关闭订单 - 长时间未到店"},
		{"canceled", "platform_cancel", "platform_for_obtain_timeout", "点我达系统关闭订单 - 长时间未离店"},
		{"canceled", "platform_cancel", "platform_for_complete_timeout", "点我达系统关闭订单 - 长时间未完成"},
		{"canceled", "platform_cancel", "other", "点我达系统关闭订单 - 系统检测或其他特殊原因"},
	}
}

// MappingRows returns the whole mapping table: every Dianwoda row of the seed page, every Eleme
// push type that concerns an order, and the rows for values this version does not know.
func MappingRows() []MappingRow {
	var rows []MappingRow
	for _, r := range DianwodaSeedRows() {
		st := DianwodaStatus(r[0])
		rows = append(rows, MappingRow{Platform: PlatformDianwoda, OrderStatus: r[0], ActionCode: r[1], ActionSubCode: r[2],
			Kind: KindDelivery, Status: st, Terminal: IsTerminal(KindDelivery, st), Meaning: r[3]})
	}
	rows = append(rows,
		MappingRow{Platform: PlatformDianwoda, OrderStatus: "(known)", ActionCode: "(any other)", ActionSubCode: "(any)",
			Kind: KindDelivery, Status: "by order_status", Meaning: "new action codes map by order_status; the codes are carried in reason"},
		MappingRow{Platform: PlatformDianwoda, OrderStatus: "(any other)", ActionCode: "(any)", ActionSubCode: "(any)",
			Kind: KindDelivery, Status: StatusUnknown, Meaning: "unknown order_status, carried in platform_status"},
	)
	types := make([]int, 0, len(elemeTypes))
	for t := range elemeTypes {
		types = append(types, t)
	}
	sort.Ints(types)
	for _, t := range types {
		i := elemeTypes[t]
		rows = append(rows, MappingRow{Platform: PlatformEleme, ElemeType: t, Kind: i.Kind, Status: i.Status,
			Terminal: IsTerminal(i.Kind, i.Status), Meaning: i.Meaning})
	}
	states := make([]string, 0, len(elemeDeliveryState))
	for s := range elemeDeliveryState {
		states = append(states, s)
	}
	sort.Strings(states)
	for _, s := range states {
		st := elemeDeliveryState[s]
		rows = append(rows, MappingRow{Platform: PlatformEleme, ElemeState: s, Kind: KindDelivery, Status: st,
			Terminal: IsTerminal(KindDelivery, st), Meaning: "delivery message of an unlisted type, by state"})
	}
	rows = append(rows, MappingRow{Platform: PlatformEleme, Kind: "by message shape", Status: StatusUnknown,
		Meaning: "any other type with an order id: refund if the message has refundStatus, delivery if it has updateAt/subState, else order"})
	return rows
}

// MappingMarkdown renders MappingRows and Statuses as MAPPING.md.
func MappingMarkdown() string {
	var b strings.Builder
	b.WriteString("# Mapping table\n\n")
	b.WriteString("Generated from `schemas/mapping.go` and `schemas/status.go` by `go test ./schemas -run TestMappingMarkdown -update`; a test fails when this file and the code disagree. Every row has a golden case in `normalizer/internal/normalize/testdata/`.\n\n")
	b.WriteString("## Unified statuses\n\n")
	b.WriteString("`rank` orders the statuses of a kind along its usual flow. The order guard uses it only to break a tie: when an event's `occurred_at` equals the latest applied one of its kind (Eleme's times are in seconds), an event of a lower rank is stale (a late `placed` after `accepted`, `refund_requested` after `refund_approved`); equal ranks (alternative outcomes of one step) and `unknown` (rank 0) pass. A newer time always wins over rank, so Dianwoda's `rider_switch` (back to `awaiting_rider`) passes by its newer time.\n\n")
	b.WriteString("| kind | status | terminal | rank | meaning |\n|---|---|---|---|---|\n")
	for _, s := range Statuses() {
		fmt.Fprintf(&b, "| %s | `%s` | %s | %d | %s |\n", s.Kind, s.Status, yesNo(s.Terminal), s.Rank, s.Meaning)
	}
	b.WriteString("\n## Dianwoda (`" + DianwodaStatusUpdate + "`)\n\n")
	b.WriteString("The status follows `order_status` alone; `action_code`, `action_sub_code` and `action_detail` are carried in `reason` verbatim, known or not. `platform_status` is `order_status`.\n\n")
	b.WriteString("| order_status | action_code | action_sub_code | kind | status | terminal | meaning |\n|---|---|---|---|---|---|---|\n")
	for _, r := range MappingRows() {
		if r.Platform != PlatformDianwoda {
			continue
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | `%s` | %s | %s |\n", r.OrderStatus, r.ActionCode, dash(r.ActionSubCode), r.Kind, r.Status, yesNo(r.Terminal), r.Meaning)
	}
	b.WriteString("\n## Eleme (push `type`)\n\n")
	b.WriteString("`platform_status` is the message's `state` (status change, delivery) or `refundStatus` (cancel/refund); for a type this version does not know that has neither, it is the type number. The order is named `orderId` in status change, cancel/refund and delivery messages and `id` in the full order of types 10/217 (OOrder); the ingress keys by `orderId`, else by `id` for a type listed below. Shop, authorization and other non-order types (91, 93, 100, 105, 221, 222…) carry no order id: the ingress keys them `eleme:shop:<shopId>` with an empty `order_id`, and the normalizer counts and skips them (`normalizer_records_skipped_total{reason=\"not_order_event\"}`); a listed type that names no order is dead-lettered (`validate`), never skipped. Types 10 and 217 are the same transition and share one `event_id`.\n\n")
	b.WriteString("| type | state (unlisted types) | kind | status | terminal | meaning |\n|---|---|---|---|---|---|\n")
	for _, r := range MappingRows() {
		if r.Platform != PlatformEleme {
			continue
		}
		typ := "any other"
		if r.ElemeType != 0 {
			typ = strconv.Itoa(r.ElemeType)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | `%s` | %s | %s |\n", typ, dash(r.ElemeState), r.Kind, r.Status, yesNo(r.Terminal), r.Meaning)
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return "`" + s + "`"
}
