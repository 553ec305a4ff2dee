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

// Command is the skeleton of a sandbox command whose credentials are of type T and whose
// sandbox is an S: its listen address from -addr or SANDBOX_ADDR, its credentials from an
// environment variable and a repeatable flag, a banner on stdout, and an HTTP server until the
// process is told to stop.
type Command[T any, S interface{ Handler() http.Handler }] struct {
	Name string // the command's name, for its flags, its banner and its errors
	Addr string // the listen address when neither -addr nor SANDBOX_ADDR gives one
	API  string // the path of the partner API, for the banner
	// Item is the repeatable flag that adds one credential ("shop", "app"), ItemForm its form.
	Item, ItemForm string
	// ItemsEnv is the environment variable with credentials separated by Sep; DemoItems are the
	// credentials when neither it nor the flags give any.
	ItemsEnv, Sep, DemoItems string
	Parse                    func(string) ([]T, error) // reads the credentials
	Key                      func(T) string            // names a credential in the banner
	New                      func(...T) S              // makes the sandbox
}

// Main runs the command in the process: until SIGINT or SIGTERM, exiting 1 with the error on
// stderr when it fails. It is the whole of a sandbox command's main.
func (c Command[T, S]) Main() {
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
func (c Command[T, S]) Run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	addr := fs.String("addr", getenv("SANDBOX_ADDR"), "listen address (SANDBOX_ADDR)")
	items := itemFlags{sep: c.Sep}
	fs.Var(&items, c.Item, c.ItemForm+" (repeatable; adds to "+c.ItemsEnv+")")
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
	creds, err := c.Parse(spec)
	if err != nil {
		return fmt.Errorf("%s: %w", c.ItemsEnv, err)
	}
	h := c.New(creds...).Handler()
	names := make([]string, len(creds))
	for i, cr := range creds {
		names[i] = c.Key(cr)
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
