package testenv

import (
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
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
//
// The same holds across processes: make test runs the end-to-end module's test process beside
// the other modules', and each hands out hundreds of ports. A port is reserved for the whole
// process by an exclusive flock(2) on a file named after it in portLockDir, held open until
// the process ends (the kernel drops the lock then, however it ends), so no other test process
// is given it meanwhile. Without the directory (not writable), reservations are this
// process's only, as before.
var handedOut = struct {
	sync.Mutex
	ports map[int]*os.File // the port's lock file, or nil when there is no lock directory
}{ports: map[int]*os.File{}}

// portLockDir is where the ports' lock files are: one directory for every test process of
// the machine's user, made once per process.
var (
	portLockDir     = filepath.Join(os.TempDir(), "orderpipe-test-ports")
	havePortLockDir = sync.OnceValue(func() bool { return os.MkdirAll(portLockDir, 0o700) == nil })
)

// reserve takes port p for this process: false when another process holds it.
func reserve(p int) (lock *os.File, ok bool) {
	if !havePortLockDir() {
		return nil, true
	}
	f, err := os.OpenFile(filepath.Join(portLockDir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, true
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// release gives ports back (tests of FreeLowPorts itself, which take hundreds).
func release(ports ...int) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for _, p := range ports {
		if f, ok := handedOut.ports[p]; ok {
			if f != nil {
				f.Close()
			}
			delete(handedOut.ports, p)
		}
	}
}

// FreeLowPorts returns a port p such that p … p+n-1 were all free a moment ago and none was
// returned before in this process or is held by another test process (see handedOut), chosen
// below the ephemeral port range (see above).
func FreeLowPorts(t testing.TB, n int) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 200 {
		p := lowPortMin + rand.IntN(lowPortMax-lowPortMin-n)
		ok := true
		for i := range n {
			_, taken := handedOut.ports[p+i]
			ok = ok && !taken
		}
		if !ok {
			continue
		}
		var locks []*os.File
		for i := range n {
			f, mine := reserve(p + i)
			if !mine {
				ok = false
				break
			}
			locks = append(locks, f)
		}
		unlock := func() {
			for _, f := range locks {
				if f != nil {
					f.Close()
				}
			}
		}
		if !ok {
			unlock()
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
				handedOut.ports[p+i] = locks[i]
			}
			return p
		}
		unlock()
	}
	t.Fatalf("no %d adjacent free ports in %d–%d", n, lowPortMin, lowPortMax)
	return 0
}
