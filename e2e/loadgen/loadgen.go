// Package loadgen sends signed, realistic Dianwoda and Eleme callbacks to an ingress from N
// connections, at a fixed rate or flat out, and measures the success replies: throughput and
// p50/p99/p999 latency. Each order walks its platform's flow in order (Dianwoda created →
// completed; Eleme 12 → 52…56 → 18). It is the core of cmd/loadgen and is meant to be driven by
// the end-to-end chaos harness as well.
//
// At a fixed rate, latency is measured from when a request was due, not when it was sent, so a
// stalled server is not hidden by a stalled client (coordinated omission).
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures Run.
type Config struct {
	// DianwodaURL and ElemeURL are the callback endpoints; an empty one is not sent to.
	DianwodaURL string
	ElemeURL    string
	Signer      Signer
	// Conns is the number of connections (and sending goroutines).
	Conns int
	// Rate is callbacks per second over all connections; 0 sends flat out.
	Rate float64
	// Duration of the measured run.
	Duration time.Duration
	// Prefix makes order ids unique to this run.
	Prefix string
	// OnReply, if set, sees every reply (for harnesses that track what was acknowledged).
	OnReply func(cb Callback, status int, latency time.Duration)
}

// Result is what a run measured.
type Result struct {
	Elapsed   time.Duration
	Sent      int64
	OK        int64
	ByStatus  map[int]int64
	NetErrors int64
	// Late counts fixed-rate requests that could not be sent on time because every connection
	// was busy (their latency includes the wait).
	Late       int64
	Throughput float64 // successes per second
	P50        time.Duration
	P99        time.Duration
	P999       time.Duration
	Max        time.Duration
	BodyBytes  int64 // mean request body size
}

func (r Result) String() string {
	return fmt.Sprintf("sent=%d ok=%d throughput=%.0f/s p50=%s p99=%s p999=%s max=%s statuses=%v net_errors=%d late=%d mean_body=%dB",
		r.Sent, r.OK, r.Throughput, r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond),
		r.P999.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond), r.ByStatus, r.NetErrors, r.Late, r.BodyBytes)
}

// Run sends until Duration has passed or ctx ends.
func Run(ctx context.Context, c Config) (Result, error) {
	var platforms []string
	if c.DianwodaURL != "" {
		platforms = append(platforms, "dianwoda")
	}
	if c.ElemeURL != "" {
		platforms = append(platforms, "eleme")
	}
	if len(platforms) == 0 || c.Conns <= 0 || c.Duration <= 0 {
		return Result{}, errors.New("loadgen: need a URL, Conns > 0 and Duration > 0")
	}
	if c.Prefix == "" {
		c.Prefix = fmt.Sprintf("lg%x-", time.Now().UnixNano()&0xffffffff)
	}
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        c.Conns,
			MaxIdleConnsPerHost: c.Conns,
			MaxConnsPerHost:     c.Conns,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()

	// At a fixed rate a pacer hands out due times; flat out, workers just go.
	var due chan time.Time
	var late atomic.Int64
	if c.Rate > 0 {
		due = make(chan time.Time, c.Conns)
		go func() {
			defer close(due)
			start := time.Now()
			interval := time.Duration(float64(time.Second) / c.Rate)
			for n := int64(0); ; n++ {
				t := start.Add(time.Duration(n) * interval)
				if d := time.Until(t); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				}
				select {
				case due <- t:
				case <-ctx.Done():
					return
				default:
					late.Add(1)
					select {
					case due <- t:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}

	type workerResult struct {
		lat       []time.Duration
		sent      int64
		statuses  map[int]int64
		netErrors int64
		bodyBytes int64
	}
	results := make([]workerResult, c.Conns)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range c.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[w]
			r.statuses = map[int]int64{}
			gen := NewOrders(c.Signer, fmt.Sprintf("%sw%d-", c.Prefix, w), rotate(platforms, w))
			for {
				var t0 time.Time
				if due != nil {
					var ok bool
					select {
					case t0, ok = <-due:
						if !ok {
							return
						}
					case <-ctx.Done():
						return
					}
				} else if ctx.Err() != nil {
					return
				}
				cb := gen.Next(time.Now())
				url := c.ElemeURL
				if cb.Platform == "dianwoda" {
					url = c.DianwodaURL + cb.Path
				}
				sent := time.Now()
				if t0.IsZero() {
					t0 = sent
				}
				status := post(ctx, client, url, cb.Body)
				lat := time.Since(t0)
				if status == -1 && ctx.Err() != nil {
					return // cut off by the end of the run, not a server failure
				}
				r.sent++
				r.bodyBytes += int64(len(cb.Body))
				if status <= 0 {
					r.netErrors++
				} else {
					r.statuses[status]++
				}
				if status == http.StatusOK {
					r.lat = append(r.lat, lat)
				}
				if c.OnReply != nil {
					c.OnReply(cb, status, lat)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := Result{Elapsed: elapsed, ByStatus: map[int]int64{}, Late: late.Load()}
	var all []time.Duration
	for _, r := range results {
		res.Sent += r.sent
		res.NetErrors += r.netErrors
		res.BodyBytes += r.bodyBytes
		for s, n := range r.statuses {
			res.ByStatus[s] += n
		}
		all = append(all, r.lat...)
	}
	if res.Sent > 0 {
		res.BodyBytes /= res.Sent
	}
	res.OK = int64(len(all))
	res.Throughput = float64(res.OK) / elapsed.Seconds()
	slices.Sort(all)
	res.P50, res.P99, res.P999 = quantile(all, .5), quantile(all, .99), quantile(all, .999)
	if len(all) > 0 {
		res.Max = all[len(all)-1]
	}
	return res, nil
}

func rotate(p []string, n int) []string {
	out := append([]string(nil), p[n%len(p):]...)
	return append(out, p[:n%len(p)]...)
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// post sends one callback and returns the status, 0 for a network error, -1 when ctx ended.
func post(ctx context.Context, client *http.Client, url string, body []byte) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1
		}
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}
