// Command elemesandbox runs the Eleme OpenAPI sandbox over HTTP (see internal/elemesandbox):
// SANDBOX_ADDR (default 127.0.0.1:8091), apps from ELEME_SANDBOX_APPS and/or repeated -app flags
// ("appId=appKey:secret"; default the demo app 62933118=demo-app-key:demo-eleme-secret, the
// appId and secret the demo ingress verifies pushes with).
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

	"github.com/orderpipe/pipeline/ingress/internal/elemesandbox"
)

// DemoApps is the demo app of `make run` and docker-compose.
const DemoApps = "62933118=demo-app-key:demo-eleme-secret"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "elemesandbox:", err)
		os.Exit(1)
	}
}

type appFlags []string

func (a *appFlags) String() string     { return strings.Join(*a, ",") }
func (a *appFlags) Set(v string) error { *a = append(*a, v); return nil }

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("elemesandbox", flag.ContinueOnError)
	addr := fs.String("addr", getenv("SANDBOX_ADDR"), "listen address (SANDBOX_ADDR)")
	var apps appFlags
	fs.Var(&apps, "app", "appId=appKey:secret (repeatable; adds to ELEME_SANDBOX_APPS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		*addr = "127.0.0.1:8091"
	}
	spec := strings.Trim(getenv("ELEME_SANDBOX_APPS")+","+apps.String(), ", ")
	if spec == "" {
		spec = DemoApps
	}
	list, err := elemesandbox.ParseApps(spec)
	if err != nil {
		return fmt.Errorf("ELEME_SANDBOX_APPS: %w", err)
	}
	sb := elemesandbox.New(list...)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	ids := make([]string, len(list))
	for i, a := range list {
		ids[i] = a.AppID
	}
	fmt.Fprintf(stdout, "elemesandbox listening on http://%s/api/v1 (admin: /sandbox/), apps %s\n", ln.Addr(), strings.Join(ids, ","))
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
