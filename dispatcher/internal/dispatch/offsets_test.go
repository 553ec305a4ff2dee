package dispatch

import (
	"reflect"
	"testing"
)

func TestOffsets(t *testing.T) {
	tests := []struct {
		name string
		add  []int64
		done []int64
		want map[int]int64
	}{
		{"nothing done", []int64{5, 6, 7}, nil, map[int]int64{}},
		{"contiguous", []int64{5, 6, 7}, []int64{5, 6}, map[int]int64{0: 6}},
		{"gap holds", []int64{5, 6, 7}, []int64{6, 7}, map[int]int64{}},
		{"gap filled", []int64{5, 6, 7}, []int64{7, 6, 5}, map[int]int64{0: 7}},
		{"sparse offsets", []int64{5, 9, 12}, []int64{5, 9}, map[int]int64{0: 9}},
		{"unknown done ignored", []int64{5}, []int64{4, 5}, map[int]int64{0: 5}},
		{"replay resets", []int64{5, 6, 7, 5}, []int64{6, 7, 5}, map[int]int64{0: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOffsets()
			for _, a := range tt.add {
				o.Add(0, a)
			}
			for _, d := range tt.done {
				o.Done(0, d)
			}
			if got := o.Committable(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("committable = %v, want %v", got, tt.want)
			}
			if got := o.Committable(); len(got) != 0 {
				t.Fatalf("second call = %v, want nothing new", got)
			}
		})
	}
}
