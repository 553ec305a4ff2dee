package consumer

import "testing"

func TestInflight(t *testing.T) {
	type op struct {
		do   string // settle, take, confirm
		id   string
		want bool // for take
	}
	tests := []struct {
		name string
		ops  []op
		size int // ids in flight at the end
	}{
		{"a taken id is not taken again while its batch writes", []op{
			{"settle", "", false}, {"take", "a", true}, {"settle", "", false}, {"take", "a", false},
		}, 1},
		{"confirmed then settled: forgotten (Redis now says duplicate)", []op{
			{"settle", "", false}, {"take", "a", true}, {"confirm", "a", false}, {"settle", "", false}, {"take", "a", true},
		}, 1},
		{"confirmed but not yet settled: still in flight", []op{
			// The claim of the next batch was sent before the confirm completed: it may have been
			// answered "replay", so the id must still count as in flight.
			{"settle", "", false}, {"take", "a", true}, {"confirm", "a", false}, {"take", "a", false},
		}, 1},
		{"ids are independent", []op{
			{"settle", "", false}, {"take", "a", true}, {"take", "b", true}, {"confirm", "a", false}, {"settle", "", false},
			{"take", "b", false}, {"take", "a", true},
		}, 2},
		{"settle without confirms changes nothing", []op{
			{"take", "a", true}, {"settle", "", false}, {"settle", "", false}, {"take", "a", false},
		}, 1},
		{"everything confirmed and settled: empty", []op{
			{"take", "a", true}, {"take", "b", true}, {"confirm", "a", false}, {"confirm", "b", false}, {"settle", "", false},
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newInflight()
			for i, o := range tt.ops {
				switch o.do {
				case "settle":
					f.settle()
				case "take":
					if got := f.take(o.id); got != o.want {
						t.Fatalf("op %d: take(%s) = %v, want %v", i, o.id, got, o.want)
					}
				case "confirm":
					f.confirm(o.id)
				}
			}
			if got := f.size(); got != tt.size {
				t.Errorf("%d ids in flight, want %d", got, tt.size)
			}
		})
	}
}
