package sandbox

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
)

// Command is the skeleton of a sandbox command: its listen address from -addr or SANDBOX_ADDR,
// its credentials from an environment variable and a repeatable flag, a banner on stdout, and an
// HTTP server until the process is told to stop.
type Command struct {
	Name string // the command's name, for its flags, its banner and its errors
	Addr string // the listen address when neither -addr nor SANDBOX_ADDR gives one
	API  string // the path of the partner API, for the banner
	// Item is the repeatable flag that adds one credential ("shop", "app"), ItemUsage its usage.
	Item, ItemUsage string
	// ItemsEnv is the environment variable with credentials separated by Sep; DemoItems are the
	// credentials when neither it nor the flags give any.
	ItemsEnv, Sep, DemoItems string
	// New builds the sandbox from the credentials and returns its handler and the names of the
	// credentials, for the banner.
	New func(items string) (http.Handler, []string, error)
}

// Main runs the command in the process: until SIGINT or SIGTERM, exiting 1 with the error on
// stderr when it fails. It is the whole of a sandbox command's main.
func (c Command) Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.Run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, c.Name+":", err)
		os.Exit(1)
	}
}

type itemFlags struct {
	items []string
	sep   string
}

func (f *itemFlags) String() string     { return strings.Join(f.items, f.sep) }
func (f *itemFlags) Set(v string) error { f.items = append(f.items, v); return nil }

// Run serves the sandbox until ctx ends, then shuts its server down (waiting up to 5 s).
func (c Command) Run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	addr := fs.String("addr", getenv("SANDBOX_ADDR"), "listen address (SANDBOX_ADDR)")
	items := itemFlags{sep: c.Sep}
	fs.Var(&items, c.Item, c.ItemUsage)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		*addr = c.Addr
	}
	spec := strings.Trim(getenv(c.ItemsEnv)+c.Sep+items.String(), c.Sep+" \t\n")
	if spec == "" {
		spec = c.DemoItems
	}
	h, names, err := c.New(spec)
	if err != nil {
		return fmt.Errorf("%s: %w", c.ItemsEnv, err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	fmt.Fprintf(stdout, "%s listening on http://%s%s (admin: /sandbox/), %ss %s\n", c.Name, ln.Addr(), c.API, c.Item, strings.Join(names, ","))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
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
