package normalize

import (
	"github.com/orderpipe/pipeline/schemas"
)

type dianwodaBody struct {
	Content *struct {
		OrderOriginalID  text `json:"order_original_id"`
		OrderStatus      text `json:"order_status"`
		ActionCode       text `json:"action_code"`
		ActionSubCode    text `json:"action_sub_code"`
		ActionDetail     text `json:"action_detail"`
		RiderCode        text `json:"rider_code"`
		RiderName        text `json:"rider_name"`
		RiderMobile      text `json:"rider_mobile"`
		TimeStatusUpdate text `json:"time_status_update"`
	} `json:"content"`
	DeliverTimes text `json:"deliver_times"`
	MsgID        text `json:"msg_id"`
	PubTime      text `json:"pub_time"`
}

// Dianwoda maps a Dianwoda dianwoda.order.status-update callback. The status follows
// order_status alone (schemas.DianwodaStatus); action codes, known or not, go to reason.
func Dianwoda(env *schemas.RawEnvelope) (schemas.StatusEvent, error) {
	var b dianwodaBody
	if err := decodeJSON(env.Body, &b); err != nil {
		return schemas.StatusEvent{}, decodeErr("dianwoda body: %v", err)
	}
	c := b.Content
	if c == nil {
		return schemas.StatusEvent{}, validateErr("dianwoda body: content missing")
	}
	orderID := string(c.OrderOriginalID)
	if orderID == "" {
		return schemas.StatusEvent{}, validateErr("dianwoda body: content.order_original_id missing")
	}
	if orderID != env.OrderID {
		return schemas.StatusEvent{}, validateErr("dianwoda body: order_original_id %q differs from the envelope's order_id %q", orderID, env.OrderID)
	}
	if c.OrderStatus == "" {
		return schemas.StatusEvent{}, validateErr("dianwoda body: content.order_status missing")
	}
	ms, ok := int64Of(c.TimeStatusUpdate)
	if !ok || ms <= 0 {
		return schemas.StatusEvent{}, validateErr("dianwoda body: content.time_status_update %q is not a positive millisecond timestamp", c.TimeStatusUpdate)
	}
	status := schemas.DianwodaStatus(string(c.OrderStatus))
	ev := schemas.StatusEvent{
		Platform:       schemas.PlatformDianwoda,
		Kind:           schemas.KindDelivery,
		OrderID:        orderID,
		Status:         status,
		PlatformStatus: string(c.OrderStatus),
		Terminal:       schemas.IsTerminal(schemas.KindDelivery, status),
		OccurredAt:     schemas.UnixMilli(ms),
		ReceivedAt:     env.ReceivedAt,
	}
	if c.ActionCode != "" || c.ActionSubCode != "" || c.ActionDetail != "" {
		ev.Reason = &schemas.Reason{Code: string(c.ActionCode), SubCode: string(c.ActionSubCode), Detail: string(c.ActionDetail)}
	}
	if c.RiderCode != "" || c.RiderName != "" || c.RiderMobile != "" {
		ev.Rider = &schemas.Rider{Code: string(c.RiderCode), Name: string(c.RiderName), Phone: string(c.RiderMobile)}
	}
	src := &schemas.Source{Type: schemas.DianwodaStatusUpdate, MessageID: string(b.MsgID)}
	if t := env.Query["type"]; len(t) > 0 && t[0] != "" {
		src.Type = t[0]
	}
	if n, ok := int64Of(b.DeliverTimes); ok && n > 0 && n < 1<<31 {
		src.DeliveryAttempt = int(n)
	}
	ev.Source = src
	ev.EventID = EventID(ev.Platform, ev.Kind, ev.OrderID, "", ev.PlatformStatus, string(c.ActionCode), string(c.ActionSubCode), ms)
	return ev, nil
}
