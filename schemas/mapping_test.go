package schemas

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite generated files (MAPPING.md)")

func TestMappingMarkdown(t *testing.T) {
	got := MappingMarkdown()
	if *update {
		if err := os.WriteFile("MAPPING.md", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("MAPPING.md")
	if err != nil {
		t.Fatalf("read MAPPING.md (run with -update to create it): %v", err)
	}
	if string(want) != got {
		t.Fatal("MAPPING.md is out of date with mapping.go/status.go: run go test ./schemas -run TestMappingMarkdown -update")
	}
}

func TestMappingRowsUseDefinedStatuses(t *testing.T) {
	for _, r := range MappingRows() {
		if r.Status == "by order_status" || r.Kind == "by message shape" {
			continue
		}
		s, ok := LookupStatus(r.Kind, r.Status)
		if !ok {
			t.Errorf("row %+v: status %q is not defined for kind %q", r, r.Status, r.Kind)
			continue
		}
		if s.Terminal != r.Terminal {
			t.Errorf("row %+v: terminal %v, status says %v", r, r.Terminal, s.Terminal)
		}
	}
}

func TestElemeOrderTypesAllMapped(t *testing.T) {
	// docs/specs/platforms.md §1.4: every type that concerns an order must map to a defined status.
	types := []int{10, 12, 14, 15, 17, 18, 217, 39}
	for t := 20; t <= 26; t++ {
		types = append(types, t)
	}
	for t := 30; t <= 36; t++ {
		types = append(types, t)
	}
	for t := 51; t <= 76; t++ {
		types = append(types, t)
	}
	for _, typ := range types {
		i, ok := ElemeType(typ)
		if !ok {
			t.Errorf("eleme type %d is not mapped", typ)
			continue
		}
		if _, ok := LookupStatus(i.Kind, i.Status); !ok || i.Status == StatusUnknown {
			t.Errorf("eleme type %d maps to %s/%s, not a defined known status", typ, i.Kind, i.Status)
		}
	}
	for _, typ := range []int{45, 91, 93, 100, 105, 218, 221, 222} {
		if _, ok := ElemeType(typ); ok {
			t.Errorf("eleme type %d is not an order transition and must not be mapped", typ)
		}
	}
}

func TestContractDeliveryTable(t *testing.T) {
	// docs/specs/contract.md "Delivery statuses, and Dianwoda's mapping".
	tests := []struct {
		give     string
		want     string
		terminal bool
	}{
		{"created", StatusAwaitingRider, false},
		{"dispatched", StatusRiderAssigned, false},
		{"arrived", StatusRiderAtStore, false},
		{"obtained", StatusPickedUp, false},
		{"completed", StatusDelivered, true},
		{"abnormal", StatusDeliveryFailed, true},
		{"canceled", StatusDeliveryCanceled, true},
		{"teleported", StatusUnknown, false},
	}
	for _, tt := range tests {
		got := DianwodaStatus(tt.give)
		if got != tt.want || IsTerminal(KindDelivery, got) != tt.terminal {
			t.Errorf("DianwodaStatus(%q) = %q terminal %v, want %q terminal %v", tt.give, got, IsTerminal(KindDelivery, got), tt.want, tt.terminal)
		}
	}
}
