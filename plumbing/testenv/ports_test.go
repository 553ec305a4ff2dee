package testenv

import "testing"

// TestFreeLowPortsNeverRepeats: ports handed out in one process never overlap, whether asked
// for one at a time or in runs (a service's HTTP and ops addresses, a cluster's ports). With
// picks at random alone, 400 of them (about 800 ports) from 12,700 repeat about a dozen times.
// The ports are given back at the end, so that the other tests of this process still find 12
// adjacent ones easily.
func TestFreeLowPortsNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	t.Cleanup(func() {
		handedOut.Lock()
		defer handedOut.Unlock()
		for p := range seen {
			delete(handedOut.ports, p)
		}
	})
	for i := range 400 {
		n := 1 + i%3
		p := FreeLowPorts(t, n)
		for q := p; q < p+n; q++ {
			if seen[q] {
				t.Fatalf("port %d handed out twice (call %d, %d ports from %d)", q, i, n, p)
			}
			seen[q] = true
		}
		if p < lowPortMin || p+n-1 >= lowPortMax {
			t.Fatalf("ports %d–%d outside %d–%d", p, p+n-1, lowPortMin, lowPortMax)
		}
	}
}
