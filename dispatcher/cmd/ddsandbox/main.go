// Command ddsandbox runs the Dangdang distristatus.update sandbox over HTTP (see
// internal/ddsandbox): SANDBOX_ADDR (default 127.0.0.1:8090), shops from SANDBOX_SHOPS and/or
// repeated -shop flags ("appkey=secret[,allow_success_to_failure][,session=S]"; default the demo
// shop 2100000000=test_secret).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/orderpipe/pipeline/dispatcher/internal/ddsandbox"
)

// DemoShops is the demo shop of the default routing table (docs/specs/platforms.md §3.2's made-up values).
const DemoShops = "2100000000=test_secret"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ddsandbox:", err)
		os.Exit(1)
	}
}

type shopFlags []string

func (s *shopFlags) String() string     { return strings.Join(*s, ";") }
func (s *shopFlags) Set(v string) error { *s = append(*s, v); return nil }

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ddsandbox", flag.ContinueOnError)
	addr := fs.String("addr", getenv("SANDBOX_ADDR"), "listen address (SANDBOX_ADDR)")
	var shops shopFlags
	fs.Var(&shops, "shop", "appkey=secret[,allow_success_to_failure][,session=S] (repeatable; adds to SANDBOX_SHOPS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		*addr = "127.0.0.1:8090"
	}
	spec := strings.TrimSpace(getenv("SANDBOX_SHOPS") + ";" + shops.String())
	if strings.Trim(spec, "; ") == "" {
		spec = DemoShops
	}
	list, err := ddsandbox.ParseShops(spec)
	if err != nil {
		return fmt.Errorf("SANDBOX_SHOPS: %w", err)
	}
	sb := ddsandbox.New(list...)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	keys := make([]string, len(list))
	for i, s := range list {
		keys[i] = s.AppKey
	}
	fmt.Fprintf(stdout, "ddsandbox listening on http://%s/openapi/rest (admin: /sandbox/), shops %s\n", ln.Addr(), strings.Join(keys, ","))
	srv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
