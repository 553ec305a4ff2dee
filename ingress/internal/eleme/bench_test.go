package eleme

import "testing"

// BenchmarkPush is what the ingress does with every Eleme push: parse, verify, key.
//
//	go test -run=^$ -bench=Push -benchmem ./internal/eleme
func BenchmarkPush(b *testing.B) {
	body := []byte(exampleBody(exampleSign))
	v := NewVerifier(map[string][]string{"62933118": {exampleSecret}})
	b.ReportAllocs()
	for b.Loop() {
		p, err := ParsePush(body)
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Verify(p); err != nil {
			b.Fatal(err)
		}
		if _, err := Key(p); err != nil {
			b.Fatal(err)
		}
	}
}
