package consumer

import (
	"encoding/json"
	"testing"
)

func BenchmarkAppendEvent(b *testing.B) {
	evs := goldenEvents(b)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = appendEvent(buf[:0], &evs[i%len(evs)])
	}
}

func BenchmarkMarshalEvent(b *testing.B) {
	evs := goldenEvents(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := json.Marshal(evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
	}
}
