package normalize

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkRecord measures mapping alone (no I/O) over the golden cases that produce events.
func BenchmarkRecord(b *testing.B) {
	var values [][]byte
	files, _ := filepath.Glob("testdata/cases/*.in.json")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		var in caseInput
		if err := json.Unmarshal(raw, &in); err != nil {
			b.Fatal(err)
		}
		v := recordValue(b, in)
		if res, err := Record(v); err == nil && res.Skip == "" {
			values = append(values, v)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := Record(values[i%len(values)]); err != nil {
			b.Fatal(err)
		}
	}
}
