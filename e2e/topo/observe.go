package topo

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderpipe/pipeline/plumbing/kafkaio"
)

// Group is a consumer group and the topic it consumes.
type Group struct{ ID, Topic string }

// LagSample is the total lag of each group at one moment (-1: could not be read).
type LagSample struct {
	At  time.Time
	Lag []int64
}

// Observer samples, while a scenario runs, the resident set size of the services' processes and
// the broker-side lag (end offset minus committed offset) of the consumer groups.
type Observer struct {
	groups []Group
	mu     sync.Mutex
	maxRSS map[string]int64
	lags   []LagSample
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Observe starts sampling every interval; pids names each running process by its service kind
// (the largest RSS is kept per kind).
func Observe(conn kafkaio.Conn, groups []Group, pids func() map[string][]int, interval time.Duration) *Observer {
	ctx, cancel := context.WithCancel(context.Background())
	o := &Observer{groups: groups, maxRSS: map[string]int64{}, cancel: cancel}
	o.wg.Add(2)
	go func() {
		defer o.wg.Done()
		for {
			for kind, ps := range pids() {
				for _, pid := range ps {
					if rss := RSS(pid); rss > 0 {
						o.mu.Lock()
						o.maxRSS[kind] = max(o.maxRSS[kind], rss)
						o.mu.Unlock()
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	}()
	go func() {
		defer o.wg.Done()
		for {
			s := LagSample{At: time.Now()}
			for _, g := range groups {
				lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				lag, err := conn.GroupLag(lctx, g.ID, g.Topic)
				cancel()
				total := int64(-1)
				if err == nil {
					total = 0
					for _, n := range lag {
						total += n
					}
				}
				s.Lag = append(s.Lag, total)
			}
			o.mu.Lock()
			o.lags = append(o.lags, s)
			o.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	}()
	return o
}

// Stop ends the sampling.
func (o *Observer) Stop() {
	o.cancel()
	o.wg.Wait()
}

// MaxRSS returns the largest resident set seen per service kind, in bytes.
func (o *Observer) MaxRSS() map[string]int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int64{}
	for k, v := range o.maxRSS {
		out[k] = v
	}
	return out
}

// Lags returns the lag samples so far.
func (o *Observer) Lags() []LagSample {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]LagSample(nil), o.lags...)
}

// Recovery is the time from the fault (at) to the first sample, taken after the fault ended
// (end), at which every group's lag is back to zero, or back to at most what it was under
// the same load before the fault (the lag of committing every second at a steady rate). ok is
// false if that never happened.
func Recovery(samples []LagSample, at, end time.Time) (time.Duration, bool) {
	var base []int64
	for _, s := range samples {
		if !s.At.Before(at) {
			break
		}
		if base == nil {
			base = make([]int64, len(s.Lag))
		}
		for i, n := range s.Lag {
			base[i] = max(base[i], n)
		}
	}
	for _, s := range samples {
		if s.At.Before(end) {
			continue
		}
		ok := true
		for i, n := range s.Lag {
			if n < 0 || (n > 0 && (base == nil || n > base[i])) {
				ok = false
			}
		}
		if ok {
			return s.At.Sub(at), true
		}
	}
	return 0, false
}

// RSS reads the resident set size of pid from /proc (0 if gone).
func RSS(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// userHZ is the kernel's USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on every Linux
// architecture Go supports (it is part of the ABI, unlike the kernel's internal HZ).
const userHZ = 100

// CPUTime reads the CPU time (user + system, all threads) pid has used so far from
// /proc/<pid>/stat, in steps of 10 ms; false if the process is gone.
func CPUTime(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * time.Second / userHZ, true
}

// GroupMembers returns how many members consumer group has and its state (Stable,
// PreparingRebalance, …), as the group coordinator sees it.
func GroupMembers(ctx context.Context, conn kafkaio.Conn, group string) (int, string, error) {
	client := conn.NewClient(5 * time.Second)
	defer client.Close()
	res, err := client.DescribeGroups(ctx, &kafkago.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return 0, "", fmt.Errorf("describe group %s: %w", group, err)
	}
	if len(res.Groups) != 1 {
		return 0, "", fmt.Errorf("describe group %s: %d groups in the answer", group, len(res.Groups))
	}
	g := res.Groups[0]
	if g.Error != nil {
		return 0, "", fmt.Errorf("describe group %s: %w", group, g.Error)
	}
	return len(g.Members), g.GroupState, nil
}
