package testenv

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// TestFreeLowPortsNeverRepeats: ports handed out in one process never overlap, whether asked
// for one at a time or in runs (a service's HTTP and ops addresses, a cluster's ports). With
// picks at random alone, 400 of them (about 800 ports) from 12,700 repeat about a dozen times.
// The ports are given back at the end, so that the other tests of this process still find 12
// adjacent ones easily.
func TestFreeLowPortsNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	t.Cleanup(func() {
		for p := range seen {
			release(p)
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

// Two test processes at once (make test runs the end-to-end module beside the others) are never
// handed the same port: a child process (this test binary again) takes 300 picks and holds
// them while this one takes 300 more. Without the cross-process reservation, 300 random picks
// each among 12,700 ports share about 7.
func TestFreeLowPortsAcrossProcesses(t *testing.T) {
	const picks = 300
	if os.Getenv("TESTENV_PORTS_CHILD") != "" {
		for i := range picks {
			p := FreeLowPorts(t, 1+i%3)
			for q := p; q < p+1+i%3; q++ {
				fmt.Println(q)
			}
		}
		fmt.Println("held")
		_, _ = io.Copy(io.Discard, os.Stdin) // hold them until the parent is done
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFreeLowPortsAcrossProcesses$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TESTENV_PORTS_CHILD=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	child := map[int]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "held" {
		if p, err := strconv.Atoi(sc.Text()); err == nil {
			child[p] = true
		}
	}
	if len(child) < picks {
		t.Fatalf("the child process handed out %d ports, want at least %d", len(child), picks)
	}
	var mine []int
	t.Cleanup(func() { release(mine...) })
	for i := range picks {
		n := 1 + i%3
		p := FreeLowPorts(t, n)
		for q := p; q < p+n; q++ {
			mine = append(mine, q)
			if child[q] {
				t.Errorf("port %d handed out to both processes", q)
			}
		}
	}
}
