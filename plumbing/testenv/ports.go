package testenv

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Ports for servers a test stops and starts again are taken below Linux's ephemeral range
// (32768–60999 by default). A port from that range (what listening on :0 gives) can be taken,
// while its server is down, by a client's own outgoing connection: a client that keeps
// reconnecting to 127.0.0.1:p can be handed local port p and connect to itself (TCP
// simultaneous open). The restart then fails with "address already in use", and the client
// talks to itself, waiting for answers that never come. Seen with kafka-go clients retrying a
// stopped broker of the test's own.
const lowPortMin, lowPortMax = 20000, 32700

// handedOut holds every port FreeLowPorts returned in this process: it never returns one twice.
// A port is free from when it is chosen until its user binds it, and two calls in a row (a
// service's HTTP and ops addresses) must not both be given it: at a few hundred calls per
// test process, a repeat among 12,700 ports came up now and then ("OPS_ADDR: must differ from
// HTTP_ADDR").
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreeLowPorts returns a port p such that p … p+n-1 were all free a moment ago and none was
// returned before in this process, chosen below the ephemeral port range (see above).
func FreeLowPorts(t testing.TB, n int) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 200 {
		p := lowPortMin + rand.IntN(lowPortMax-lowPortMin-n)
		ok := true
		for i := range n {
			ok = ok && !handedOut.ports[p+i]
		}
		if !ok {
			continue
		}
		var ls []net.Listener
		for i := range n {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			for i := range n {
				handedOut.ports[p+i] = true
			}
			return p
		}
	}
	t.Fatalf("no %d adjacent free ports in %d–%d", n, lowPortMin, lowPortMax)
	return 0
}
