// Command loadgen sends signed, realistic Dianwoda and Eleme callbacks to an ingress and reports
// throughput and p50/p99/p999 of the success replies (see package loadgen). With -serve-noop it
// instead serves the do-nothing reference handler; with -serve-ackwait, the one that reads the
// body and waits for a batched acknowledgement before it answers.
//
//	loadgen -url http://127.0.0.1:8080 -conns 64 -duration 20s                 # flat out
//	loadgen -url http://127.0.0.1:8080 -conns 64 -rate 2000 -duration 20s      # fixed rate
//	loadgen -serve-noop 127.0.0.1:18080                                         # the echo reference
//	loadgen -serve-ackwait 127.0.0.1:18081 -ack-linger 2ms                      # the waiting one
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/orderpipe/pipeline/e2e/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "ingress base URL (callback port)")
	dwdURL := fs.String("dianwoda-url", "", "Dianwoda endpoint (default <url>/v1/callbacks/dianwoda); \"-\" to skip")
	elmURL := fs.String("eleme-url", "", "Eleme endpoint (default <url>/v1/callbacks/eleme); \"-\" to skip")
	conns := fs.Int("conns", 32, "connections")
	rate := fs.Float64("rate", 0, "callbacks per second over all connections; 0 = flat out")
	duration := fs.Duration("duration", 20*time.Second, "length of the run")
	dwdSecret := fs.String("dianwoda-secret", envOr("LOADGEN_DIANWODA_SECRET", "dev-dianwoda-secret"), "Dianwoda secret (env LOADGEN_DIANWODA_SECRET)")
	elmApp := fs.String("eleme-app", "62933118", "Eleme appId")
	elmSecret := fs.String("eleme-secret", envOr("LOADGEN_ELEME_SECRET", "dev-eleme-secret"), "Eleme secret (env LOADGEN_ELEME_SECRET)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	label := fs.String("label", "", "label printed with the result")
	serveNoop := fs.String("serve-noop", "", "serve the do-nothing echo reference on this address instead of sending")
	serveAckWait := fs.String("serve-ackwait", "", "serve the echo reference that reads the body and waits for a batched ack (-ack-linger) on this address instead of sending")
	ackLinger := fs.Duration("ack-linger", 2*time.Millisecond, "with -serve-ackwait: how long a batch of waiting requests gathers before it is released (default the Producer's linger)")
	ackBytes := fs.Int("ack-bytes", 16<<10, "with -serve-ackwait: release a batch early once its bodies reach this many bytes, 0 never (default the Producer's LingerBytes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var reference http.Handler // a reference server instead of sending
	addr := *serveNoop
	switch {
	case *serveAckWait != "":
		addr, reference = *serveAckWait, loadgen.AckWaitHandler(ctx, *ackLinger, *ackBytes)
	case *serveNoop != "":
		reference = loadgen.NoopHandler()
	}
	if reference != nil {
		srv := &http.Server{Addr: addr, Handler: reference, ReadHeaderTimeout: 5 * time.Second}
		go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }()
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	endpoint := func(v, path string) string {
		switch v {
		case "-":
			return ""
		case "":
			return strings.TrimRight(*base, "/") + path
		}
		return v
	}
	res, err := loadgen.Run(ctx, loadgen.Config{
		DianwodaURL: endpoint(*dwdURL, "/v1/callbacks/dianwoda"),
		ElemeURL:    endpoint(*elmURL, "/v1/callbacks/eleme"),
		Signer:      loadgen.Signer{DianwodaSecret: *dwdSecret, ElemeAppID: *elmApp, ElemeSecret: *elmSecret},
		Conns:       *conns,
		Rate:        *rate,
		Duration:    *duration,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			Label         string
			Rate          float64
			Conns         int
			Sent, OK      int64
			Throughput    float64
			P50ms, P99ms  float64
			P999ms, MaxMs float64
			ByStatus      map[int]int64
			NetErrors     int64
			Late          int64
			MeanBodyBytes int64
			CPUSeconds    float64 // this process's user+system CPU, so a harness can see the load generator's share
		}{*label, *rate, *conns, res.Sent, res.OK, res.Throughput, ms(res.P50), ms(res.P99), ms(res.P999), ms(res.Max), res.ByStatus, res.NetErrors, res.Late, res.BodyBytes, cpuSeconds()})
	}
	_, err = fmt.Fprintf(stdout, "%s%s\n", prefix(*label), res)
	return err
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func prefix(l string) string {
	if l == "" {
		return ""
	}
	return l + ": "
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
