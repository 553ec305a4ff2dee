package normalize

import (
	"bytes"
	"encoding/json"
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
		if err := json.Unmarshal(raw, &s); err != nil {
			return schemas.StatusEvent{}, decodeErr("eleme body: message: %v", err)
		}
		raw = []byte(s)
	}
	var m elemeMessage
	if err := decodeJSON(raw, &m); err != nil {
		return schemas.StatusEvent{}, decodeErr("eleme message: %v", err)
	}
	orderID := string(m.OrderID)
	if orderID == "" {
		orderID = string(m.ID)
	}
	if orderID == "" {
		return schemas.StatusEvent{}, validateErr("eleme message: orderId missing")
	}
	if orderID != env.OrderID {
		return schemas.StatusEvent{}, validateErr("eleme message: orderId %q differs from the envelope's order_id %q", orderID, env.OrderID)
	}

	info, known := schemas.ElemeType(typ)
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

	occurred, ok := elemeOccurred(&m, b.Timestamp)
	if !ok {
		return schemas.StatusEvent{}, validateErr("eleme message: no usable time (updateAt, updateTime, activeAt, createdAt or timestamp)")
	}

	platformStatus := string(m.State)
	if info.Kind == schemas.KindRefund {
		platformStatus = string(m.RefundStatus)
	}
	if platformStatus == "" {
		platformStatus = string(m.Status)
	}
	typStr := strconv.Itoa(typ)
	if platformStatus == "" {
		platformStatus = typStr
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
	ev.EventID = EventID(ev.Platform, ev.Kind, ev.OrderID, typStr, ev.PlatformStatus, code, "", occurred)
	return ev, nil
}

func elemeOccurred(m *elemeMessage, pushTimestamp text) (int64, bool) {
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
	if ms, ok := int64Of(pushTimestamp); ok && ms > 0 {
		return ms, true
	}
	return 0, false
}
