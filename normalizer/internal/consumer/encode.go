package consumer

import (
	"strconv"

	"github.com/orderpipe/pipeline/schemas"
	"github.com/orderpipe/pipeline/schemas/jsonenc"
)

// appendEvent appends ev encoded exactly as json.Marshal(ev) would encode it (same field order,
// same omitempty rules, same string escaping), without reflection: encoding the events was a
// tenth of the normalizer's CPU. FuzzAppendEvent and TestAppendEventMatchesMarshal hold it to
// json.Marshal byte for byte; a field added to schemas.StatusEvent fails TestAppendEventCoversEveryField
// until it is added here.
func appendEvent(b []byte, ev *schemas.StatusEvent) []byte {
	b = append(b, `{"event_id":`...)
	b = appendString(b, ev.EventID)
	b = append(b, `,"platform":`...)
	b = appendString(b, ev.Platform)
	b = append(b, `,"kind":`...)
	b = appendString(b, ev.Kind)
	b = append(b, `,"order_id":`...)
	b = appendString(b, ev.OrderID)
	b = append(b, `,"status":`...)
	b = appendString(b, ev.Status)
	b = append(b, `,"platform_status":`...)
	b = appendString(b, ev.PlatformStatus)
	b = append(b, `,"terminal":`...)
	b = strconv.AppendBool(b, ev.Terminal)
	b = append(b, `,"occurred_at":"`...)
	b = schemas.AppendTime(b, ev.OccurredAt.Time)
	b = append(b, `","received_at":"`...)
	b = schemas.AppendTime(b, ev.ReceivedAt.Time)
	b = append(b, '"')
	if ev.Stale {
		b = append(b, `,"stale":true`...)
	}
	if ev.ShopID != "" {
		b = append(b, `,"shop_id":`...)
		b = appendString(b, ev.ShopID)
	}
	if r := ev.Reason; r != nil {
		b = append(b, `,"reason":{`...)
		b = appendOpt(b, true, "code", r.Code)
		b = appendOpt(b, b[len(b)-1] == '{', "sub_code", r.SubCode)
		b = appendOpt(b, b[len(b)-1] == '{', "detail", r.Detail)
		b = append(b, '}')
	}
	if a := ev.Actor; a != nil {
		b = append(b, `,"actor":{"role":`...)
		b = appendString(b, a.Role)
		b = append(b, '}')
	}
	if r := ev.Rider; r != nil {
		b = append(b, `,"rider":{`...)
		b = appendOpt(b, true, "code", r.Code)
		b = appendOpt(b, b[len(b)-1] == '{', "name", r.Name)
		b = appendOpt(b, b[len(b)-1] == '{', "phone", r.Phone)
		b = append(b, '}')
	}
	if r := ev.Refund; r != nil {
		b = append(b, `,"refund":{`...)
		b = appendOpt(b, true, "status", r.Status)
		b = appendOpt(b, b[len(b)-1] == '{', "type", r.Type)
		b = appendOpt(b, b[len(b)-1] == '{', "amount", r.Amount)
		b = appendOpt(b, b[len(b)-1] == '{', "reason", r.Reason)
		if len(r.Items) > 0 {
			if b[len(b)-1] != '{' {
				b = append(b, ',')
			}
			b = append(b, `"items":[`...)
			for i, it := range r.Items {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"name":`...)
				b = appendString(b, it.Name)
				b = appendOpt(b, false, "quantity", it.Quantity)
				b = appendOpt(b, false, "price", it.Price)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if s := ev.Source; s != nil {
		b = append(b, `,"source":{`...)
		b = appendOpt(b, true, "type", s.Type)
		b = appendOpt(b, b[len(b)-1] == '{', "message_id", s.MessageID)
		if s.DeliveryAttempt != 0 {
			if b[len(b)-1] != '{' {
				b = append(b, ',')
			}
			b = append(b, `"delivery_attempt":`...)
			b = strconv.AppendInt(b, int64(s.DeliveryAttempt), 10)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendOpt appends "name":value unless value is empty (omitempty), with a comma unless first.
func appendOpt(b []byte, first bool, name, value string) []byte {
	if value == "" {
		return b
	}
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":`...)
	return appendString(b, value)
}

// appendString quotes s as encoding/json does (jsonenc.AppendString).
func appendString(b []byte, s string) []byte { return jsonenc.AppendString(b, s) }
