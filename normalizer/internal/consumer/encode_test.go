package consumer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/orderpipe/pipeline/schemas"
)

func goldenEvents(t testing.TB) []schemas.StatusEvent {
	files, _ := filepath.Glob("../normalize/testdata/cases/*.golden.json")
	if len(files) == 0 {
		t.Fatal("no golden cases")
	}
	var evs []schemas.StatusEvent
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Events []schemas.StatusEvent `json:"events"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, out.Events...)
	}
	return evs
}

func TestAppendEventMatchesMarshal(t *testing.T) {
	evs := goldenEvents(t)
	odd := evs[0]
	odd.Stale = true
	odd.ShopID = "<&>\u2028\u2029\x00\x1f\"\\\b\f\n\r\t\xff中"
	odd.Reason = &schemas.Reason{SubCode: "only sub"}
	odd.Rider = &schemas.Rider{Phone: "1"}
	odd.Actor = &schemas.Actor{}
	odd.Refund = &schemas.Refund{Items: []schemas.RefundItem{{Name: ""}, {Name: "a", Price: "1"}}}
	odd.Source = &schemas.Source{DeliveryAttempt: 3}
	empty := schemas.StatusEvent{Reason: &schemas.Reason{}, Rider: &schemas.Rider{}, Refund: &schemas.Refund{}, Source: &schemas.Source{}}
	for _, ev := range append(evs, odd, empty) {
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendEvent(nil, &ev); !bytes.Equal(got, want) {
			t.Fatalf("appendEvent differs from json.Marshal:\n got %s\nwant %s", got, want)
		}
	}
}

// TestAppendEventCoversEveryField fails when schemas.StatusEvent (or a nested type) gains a
// field that appendEvent does not know yet.
func TestAppendEventCoversEveryField(t *testing.T) {
	counts := map[reflect.Type]int{
		reflect.TypeFor[schemas.StatusEvent](): 16, reflect.TypeFor[schemas.Reason](): 3, reflect.TypeFor[schemas.Actor](): 1,
		reflect.TypeFor[schemas.Rider](): 3, reflect.TypeFor[schemas.Refund](): 5, reflect.TypeFor[schemas.RefundItem](): 3,
		reflect.TypeFor[schemas.Source](): 3,
	}
	for typ, n := range counts {
		if typ.NumField() != n {
			t.Errorf("%s has %d fields, appendEvent encodes %d: teach appendEvent the new ones", typ, typ.NumField(), n)
		}
	}
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("id", "eleme", "<order>", "st", "ps", "shop&", "code", "sub", "detail", "name", "1", "2", int64(1), true, 0)
	f.Add("", "", "", "", "", "", "", "", "", "", "", "", int64(-1), false, 2)
	f.Fuzz(func(t *testing.T, id, platform, order, status, ps, shop, code, sub, detail, name, qty, price string, ms int64, stale bool, attempt int) {
		ev := schemas.StatusEvent{EventID: id, Platform: platform, OrderID: order, Status: status, PlatformStatus: ps, ShopID: shop,
			Stale: stale, OccurredAt: schemas.UnixMilli(ms % 1e14), ReceivedAt: schemas.UnixMilli(ms % 1e13),
			Reason: &schemas.Reason{Code: code, SubCode: sub, Detail: detail}, Rider: &schemas.Rider{Name: name, Phone: qty},
			Refund: &schemas.Refund{Amount: price, Items: []schemas.RefundItem{{Name: name, Quantity: qty, Price: price}}},
			Source: &schemas.Source{Type: code, DeliveryAttempt: attempt}, Actor: &schemas.Actor{Role: sub}}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Skip()
		}
		if got := appendEvent(nil, &ev); !bytes.Equal(got, want) {
			t.Fatalf("differs:\n got %s\nwant %s", got, want)
		}
	})
}
