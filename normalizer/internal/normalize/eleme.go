package normalize

import (
	"bytes"
	json "github.com/goccy/go-json"
	"strconv"
	"time"

	"github.com/orderpipe/pipeline/schemas"
)

type elemeBody struct {
	AppID     text            `json:"appId"`
	RequestID text            `json:"requestId"`
	Type      text            `json:"type"`
	Message   json.RawMessage `json:"message"`
	ShopID    text            `json:"shopId"`
	Timestamp text            `json:"timestamp"`
	UserID    text            `json:"userId"`
}

// elemeMessage is the union of the message shapes: status change {orderId, state, shopId,
// updateTime(s), role}, cancel/refund {orderId, refundStatus, reason, shopId, goodsList,
// refundType, totalPrice, updateTime(s)}, delivery {orderId, shopId, state, subState, name,
// phone, updateAt(ms)} and the order itself (10/217: OOrder, id/orderId, activeAt, createdAt).
type elemeMessage struct {
	OrderID      text `json:"orderId"`
	ID           text `json:"id"`
	State        text `json:"state"`
	Status       text `json:"status"`
	SubState     text `json:"subState"`
	ShopID       text `json:"shopId"`
	UpdateTime   text `json:"updateTime"`
	UpdateAt     text `json:"updateAt"`
	Role         text `json:"role"`
	RefundStatus text `json:"refundStatus"`
	Reason       text `json:"reason"`
	RefundType   text `json:"refundType"`
	TotalPrice   text `json:"totalPrice"`
	Name         text `json:"name"`
	Phone        text `json:"phone"`
	ActiveAt     text `json:"activeAt"`
	CreatedAt    text `json:"createdAt"`
	GoodsList    []struct {
		Name     text `json:"name"`
		Quantity text `json:"quantity"`
		Price    text `json:"price"`
	} `json:"goodsList"`
}

// beijing is the zone of OOrder's zone-less datetimes (activeAt, createdAt).
var beijing = time.FixedZone("UTC+8", 8*3600)

// Eleme maps an Eleme push. Known types map by schemas.ElemeType; a type this version does not
// know becomes status "unknown" (a delivery message of an unknown type maps by its state), its
// kind guessed from the message's shape. occurred_at is the message's own time: updateAt (ms)
// for delivery, updateTime (s) for status changes and refunds, activeAt/createdAt for the order
// itself, and the push's timestamp (ms) only when the message has none.
func Eleme(env *schemas.RawEnvelope) (schemas.StatusEvent, error) {
	var b elemeBody
	if err := decodeJSON(env.Body, &b); err != nil {
		return schemas.StatusEvent{}, decodeErr("eleme body: %v", err)
	}
	typ, err := strconv.Atoi(string(b.Type))
	if err != nil {
		return schemas.StatusEvent{}, validateErr("eleme body: type %q is not an integer", b.Type)
	}
	raw := bytes.TrimSpace(b.Message)
	if len(raw) == 0 || string(raw) == "null" {
		return schemas.StatusEvent{}, validateErr("eleme body: message missing")
	}
	if raw[0] == '"' { // the documented form: a string containing JSON
		var s string
		if err := decodeJSON(raw, &s); err != nil {
			return schemas.StatusEvent{}, decodeErr("eleme body: message: %v", err)
		}
		raw = []byte(s)
	}
	var m elemeMessage
	if err := decodeJSON(raw, &m); err != nil {
		return schemas.StatusEvent{}, decodeErr("eleme message: %v", err)
	}
	info, known := schemas.ElemeType(typ)
	// Which field names the order (docs/specs/platforms.md §1.4, OOrder in the Eleme SDKs): the status
	// change, cancel/refund and delivery messages carry orderId; the full order of types 10 and
	// 217 (OOrder) carries id. id is read only for a known order type: in other messages (shop
	// 91/93, ...) an id is not an order's.
	orderID := string(m.OrderID)
	if orderID == "" && known {
		orderID = string(m.ID)
	}
	switch {
	case env.OrderID == "" && !known:
		return schemas.StatusEvent{}, errNotOrderEvent // shop, authorization, market...: keyed by shop
	case orderID == "" && known:
		return schemas.StatusEvent{}, validateErr("eleme message: type %d is an order message but names no order (orderId or id)", typ)
	case orderID == "":
		return schemas.StatusEvent{}, validateErr("eleme message: orderId missing")
	case env.OrderID != "" && orderID != env.OrderID:
		// An empty envelope order_id is an ingress that keyed an id-only order by its shop
		// (before it read id): the message's own id is the order.
		return schemas.StatusEvent{}, validateErr("eleme message: orderId %q differs from the envelope's order_id %q", orderID, env.OrderID)
	}

	isDelivery := m.UpdateAt != "" || m.SubState != ""
	switch {
	case known:
	case m.RefundStatus != "":
		info = schemas.ElemeTypeInfo{Type: typ, Kind: schemas.KindRefund, Status: schemas.StatusUnknown}
	case isDelivery:
		info = schemas.ElemeTypeInfo{Type: typ, Kind: schemas.KindDelivery, Status: schemas.ElemeDeliveryState(string(m.State))}
	default:
		info = schemas.ElemeTypeInfo{Type: typ, Kind: schemas.KindOrder, Status: schemas.StatusUnknown}
	}

	occurred, own := elemeOccurred(&m)
	if !own {
		// No time of its own: the push's timestamp orders it, but it is the push's time, not
		// the transition's, so it stays out of the event id (a re-push must keep the id).
		ms, ok := int64Of(b.Timestamp)
		if !ok || ms <= 0 {
			return schemas.StatusEvent{}, validateErr("eleme message: no usable time (updateAt, updateTime, activeAt, createdAt or timestamp)")
		}
		occurred = ms
	}

	platformStatus := string(m.State)
	if info.Kind == schemas.KindRefund {
		platformStatus = string(m.RefundStatus)
	}
	if platformStatus == "" {
		platformStatus = string(m.Status)
	}
	typStr := strconv.Itoa(typ)
	idStatus := platformStatus
	if platformStatus == "" {
		platformStatus, idStatus = typStr, eventIDType(typ)
	}
	ev := schemas.StatusEvent{
		Platform:       schemas.PlatformEleme,
		Kind:           info.Kind,
		OrderID:        orderID,
		Status:         info.Status,
		PlatformStatus: platformStatus,
		Terminal:       schemas.IsTerminal(info.Kind, info.Status),
		OccurredAt:     schemas.UnixMilli(occurred),
		ReceivedAt:     env.ReceivedAt,
		ShopID:         string(m.ShopID),
		Source:         &schemas.Source{Type: typStr, MessageID: string(b.RequestID)},
	}
	if ev.ShopID == "" {
		ev.ShopID = string(b.ShopID)
	}
	if m.Role != "" {
		ev.Actor = &schemas.Actor{Role: string(m.Role)}
	}
	var code string
	switch info.Kind {
	case schemas.KindDelivery:
		if m.SubState != "" {
			code = string(m.SubState)
			ev.Reason = &schemas.Reason{Code: code}
		}
		if m.Name != "" || m.Phone != "" {
			ev.Rider = &schemas.Rider{Name: string(m.Name), Phone: string(m.Phone)}
		}
	case schemas.KindRefund:
		rf := &schemas.Refund{Status: string(m.RefundStatus), Type: string(m.RefundType), Amount: string(m.TotalPrice), Reason: string(m.Reason)}
		for _, g := range m.GoodsList {
			rf.Items = append(rf.Items, schemas.RefundItem{Name: string(g.Name), Quantity: string(g.Quantity), Price: string(g.Price)})
		}
		ev.Refund = rf
	}
	idMS := occurred
	if !own {
		idMS = 0
	}
	ev.EventID = EventID(ev.Platform, ev.Kind, ev.OrderID, eventIDType(typ), idStatus, code, "", idMS)
	return ev, nil
}

// eventIDType is the push type as named in the event id: 217 replaced 10 for the same
// transition ("placed"), so both are named 10 and a push of each gives one event.
func eventIDType(typ int) string {
	if typ == 217 {
		typ = 10
	}
	return strconv.Itoa(typ)
}

// elemeOccurred is the message's own time of the transition; own is false when it has none.
func elemeOccurred(m *elemeMessage) (ms int64, own bool) {
	if ms, ok := int64Of(m.UpdateAt); ok && ms > 0 {
		return ms, true
	}
	if s, ok := int64Of(m.UpdateTime); ok && s > 0 && s < 1e11 {
		return s * 1000, true
	}
	for _, t := range []text{m.ActiveAt, m.CreatedAt} {
		if t == "" {
			continue
		}
		if v, err := time.ParseInLocation("2006-01-02T15:04:05", string(t), beijing); err == nil {
			return v.UnixMilli(), true
		}
		if v, err := time.Parse(time.RFC3339Nano, string(t)); err == nil {
			return v.UnixMilli(), true
		}
	}
	return 0, false
}
