// Command replytail says how much of a system-bench run's reply tail the broker's stop-the-world
// pauses make. It lines up the slowest success replies (BENCH_REPLY_TRACE: when each
// acknowledged transition was first sent and when it was acknowledged) with the broker JVM's
// safepoint log (every pause, with its end time and length), and reports the share of the
// slowest 1 % that overlap a pause, against the share of all replies that do, the p99 of the
// replies that overlap none, and the moments where the other slow replies crowd.
//
//	jcmd <broker pid> VM.log output=file=/tmp/safepoints.log what=safepoint=info decorators=utctime
//	BENCH_REPLY_TRACE=/tmp/trace.csv BENCH_RATES="2000:30s" … e2e/bench/system.sh
//	go run ./e2e/cmd/replytail -trace /tmp/trace-2000.csv -safepoints /tmp/safepoints.log
//
// Latencies here run from the first send, not from the due time as the bench's reply columns do,
// so its p99 is the bench's less the generator's own lateness.
package main

import (
	"bufio"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "replytail:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("replytail", flag.ContinueOnError)
	tracePath := fs.String("trace", "", "reply trace CSV written by the system bench (BENCH_REPLY_TRACE)")
	spPath := fs.String("safepoints", "", "the broker JVM's safepoint log (jcmd VM.log what=safepoint=info decorators=utctime)")
	minPause := fs.Duration("min-pause", time.Millisecond, "pauses shorter than this are ignored")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tracePath == "" || *spPath == "" {
		return errors.New("-trace and -safepoints are required")
	}
	tf, err := os.Open(*tracePath)
	if err != nil {
		return err
	}
	defer tf.Close()
	replies, err := readTrace(tf)
	if err != nil {
		return fmt.Errorf("%s: %w", *tracePath, err)
	}
	sf, err := os.Open(*spPath)
	if err != nil {
		return err
	}
	defer sf.Close()
	pauses, err := readSafepoints(sf, *minPause)
	if err != nil {
		return fmt.Errorf("%s: %w", *spPath, err)
	}
	s, err := analyse(replies, pauses)
	if err != nil {
		return err
	}
	s.print(stdout)
	return nil
}

// reply is one acknowledged transition: first sent, acknowledged, and when the normalizer wrote
// its event (zero when the trace has no such column or none was seen).
type reply struct{ sent, acked, written time.Time }

func (r reply) latency() time.Duration { return r.acked.Sub(r.sent) }

// pause is one stop-the-world pause of the broker's JVM.
type pause struct{ start, end time.Time }

func (p pause) overlaps(r reply) bool { return p.start.Before(r.acked) && p.end.After(r.sent) }

// readTrace reads "first_at_us,acked_at_us[,written_at_us]" lines (Unix µs; a written_at of 0
// is none) after a header.
func readTrace(r io.Reader) ([]reply, error) {
	sc := bufio.NewScanner(r)
	var out []reply
	for line := 0; sc.Scan(); line++ {
		if line == 0 {
			continue // the header
		}
		f := strings.Split(strings.TrimSpace(sc.Text()), ",")
		if len(f) != 2 && len(f) != 3 {
			return nil, fmt.Errorf("line %d: %d fields, want 2 or 3", line+1, len(f))
		}
		us := make([]int64, len(f))
		for i, v := range f {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line+1, err)
			}
			us[i] = n
		}
		r := reply{sent: time.UnixMicro(us[0]), acked: time.UnixMicro(us[1])}
		if len(us) == 3 && us[2] != 0 {
			r.written = time.UnixMicro(us[2])
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no replies")
	}
	return out, nil
}

// safepointLine matches a JDK 17 unified-logging safepoint line with the utctime decorator
// first, e.g. `[2026-12-01T03:21:34.085+0000] Safepoint "G1CollectForAllocation", Time since
// last: 3040795427 ns, Reaching safepoint: 109676 ns, Cleanup: 9693 ns, At safepoint: 20752860
// ns, Total: 20872229 ns`. The line is written when the pause ends.
var safepointLine = regexp.MustCompile(`^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[+-]\d{4})\].*\bSafepoint "[^"]+".*\bTotal: (\d+) ns`)

func readSafepoints(r io.Reader, minPause time.Duration) ([]pause, error) {
	sc := bufio.NewScanner(r)
	var out []pause
	for sc.Scan() {
		m := safepointLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue // the log's other lines (GC, start-up)
		}
		end, err := time.Parse("2006-01-02T15:04:05.999999999-0700", m[1])
		if err != nil {
			return nil, err
		}
		ns, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil {
			return nil, err
		}
		if d := time.Duration(ns); d >= minPause {
			out = append(out, pause{start: end.Add(-d), end: end})
		}
	}
	return out, sc.Err()
}

// summary is what analyse found.
type summary struct {
	replies           int
	window            time.Duration
	p50, p99          time.Duration
	pauses            int
	paused            time.Duration // total length of the pauses in the window
	shortest, longest time.Duration
	slowest           int // replies at or above p99
	slowInPause       int // of those, overlapping a pause
	allInPause        int
	p99NoPause        time.Duration // p99 of the replies overlapping no pause
	crowds            []crowd       // where the slowest replies overlapping no pause were sent
	// slowWritten counts the slowest replies whose event the normalizer had written before the
	// reply arrived, writtenLead is the median of how long before: time the reply spent on its
	// way back after Kafka had the callback (the ingress's reply, the generator's read).
	slowWritten int
	writtenLead time.Duration
}

// crowd is a 100 ms window (by send time, from the first send) and how many of the slowest
// replies that overlap no pause were sent in it.
type crowd struct {
	at    time.Duration
	count int
}

func analyse(replies []reply, pauses []pause) (summary, error) {
	slices.SortFunc(replies, func(a, b reply) int { return a.sent.Compare(b.sent) })
	first := replies[0].sent
	last := first
	for _, r := range replies {
		if r.acked.After(last) {
			last = r.acked
		}
	}
	var in []pause
	for _, p := range pauses {
		if p.end.After(first) && p.start.Before(last) {
			in = append(in, p)
		}
	}
	lat := make([]time.Duration, len(replies))
	for i, r := range replies {
		lat[i] = r.latency()
	}
	slices.Sort(lat)
	s := summary{replies: len(replies), window: last.Sub(first), p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), pauses: len(in)}
	for i, p := range in {
		d := p.end.Sub(p.start)
		s.paused += d
		if i == 0 || d < s.shortest {
			s.shortest = d
		}
		s.longest = max(s.longest, d)
	}
	// Safepoints do not overlap one another, so sorted by end they are sorted by start too: the
	// first pause that ends after a reply was sent is the only one that can overlap it.
	slices.SortFunc(in, func(a, b pause) int { return a.end.Compare(b.end) })
	overlaps := func(r reply) bool {
		i, _ := slices.BinarySearchFunc(in, r.sent, func(p pause, t time.Time) int {
			if p.end.After(t) {
				return 1
			}
			return -1
		})
		return i < len(in) && in[i].overlaps(r)
	}
	var clean, leads []time.Duration
	counts := map[time.Duration]int{}
	for _, r := range replies {
		paused := overlaps(r)
		if paused {
			s.allInPause++
		} else {
			clean = append(clean, r.latency())
		}
		if r.latency() < s.p99 {
			continue
		}
		s.slowest++
		if !r.written.IsZero() && r.written.Before(r.acked) {
			s.slowWritten++
			leads = append(leads, r.acked.Sub(r.written))
		}
		if paused {
			s.slowInPause++
		} else {
			counts[r.sent.Sub(first).Truncate(100*time.Millisecond)]++
		}
	}
	if len(clean) == 0 {
		return s, errors.New("every reply overlaps a pause")
	}
	slices.Sort(clean)
	s.p99NoPause = quantile(clean, 0.99)
	if len(leads) > 0 {
		slices.Sort(leads)
		s.writtenLead = quantile(leads, 0.5)
	}
	for at, n := range counts {
		s.crowds = append(s.crowds, crowd{at, n})
	}
	slices.SortFunc(s.crowds, func(a, b crowd) int { return cmp.Or(b.count-a.count, cmp.Compare(a.at, b.at)) })
	s.crowds = s.crowds[:min(len(s.crowds), 5)]
	return s, nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*q))]
}

func (s summary) print(w io.Writer) {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) }
	pct := func(n, of int) string {
		return strconv.FormatFloat(100*float64(n)/float64(max(1, of)), 'f', 1, 64) + " %"
	}
	fmt.Fprintf(w, "replies %d over %s; first send → reply p50 %s ms, p99 %s ms\n", s.replies, s.window.Round(time.Millisecond), ms(s.p50), ms(s.p99))
	if s.pauses > 0 {
		fmt.Fprintf(w, "broker pauses in the window: %d, %s ms in all (%s of the time), %s–%s ms each\n", s.pauses, ms(s.paused),
			strconv.FormatFloat(100*s.paused.Seconds()/s.window.Seconds(), 'f', 2, 64)+" %", ms(s.shortest), ms(s.longest))
	} else {
		fmt.Fprintln(w, "broker pauses in the window: none")
	}
	fmt.Fprintf(w, "slowest 1 %% (%d): %d overlap a broker pause (%s); of all replies %s do\n", s.slowest, s.slowInPause,
		pct(s.slowInPause, s.slowest), pct(s.allInPause, s.replies))
	fmt.Fprintf(w, "p99 of the replies overlapping no pause: %s ms\n", ms(s.p99NoPause))
	if s.slowWritten > 0 {
		fmt.Fprintf(w, "slowest 1 %%: the event was written before the reply arrived for %d (%s), a median %s ms before\n",
			s.slowWritten, pct(s.slowWritten, s.slowest), ms(s.writtenLead))
	}
	if len(s.crowds) > 0 {
		parts := make([]string, len(s.crowds))
		for i, c := range s.crowds {
			parts[i] = fmt.Sprintf("%.1f s: %d", c.at.Seconds(), c.count)
		}
		fmt.Fprintf(w, "the other slowest replies, by 100 ms of sending (most first): %s\n", strings.Join(parts, ", "))
	}
}
