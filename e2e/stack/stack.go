// Package stack starts the pipeline's binaries as separate processes, waits until they are ready,
// and stops or kills them: what `make run` and the end-to-end tests share. A Service is one OS
// process; killing it with SIGKILL is how the tests prove that nothing acknowledged is lost.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Packages are the service binaries `make run` and the end-to-end tests run, as paths from the
// repository's root (the Makefile's run target builds the same ones).
var Packages = []string{"ingress", "normalizer", "dispatcher", "dispatcher/cmd/ddsandbox",
	"ingress/cmd/elemepull", "ingress/cmd/elemesandbox"}

// Build builds Packages into dir; root is the repository's root, relative to the working
// directory or absolute. The error carries go build's output.
func Build(root, dir string) error {
	args := []string{"build", "-o", dir}
	for _, p := range Packages {
		path := filepath.Join(root, p)
		if !filepath.IsAbs(path) {
			path = "./" + path // a directory, not an import path
		}
		args = append(args, path)
	}
	cmd := exec.Command("go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the services: %w\n%s", err, out)
	}
	return nil
}

// Service is one binary of the pipeline run as a child process.
type Service struct {
	Name string
	// Bin is the executable's path.
	Bin  string
	Args []string
	// Env is added to the parent's environment.
	Env []string
	// ReadyURL answers 200 once the service is ready; empty means "started is ready".
	ReadyURL string
	// Output receives the child's stdout and stderr; nil discards them.
	Output io.Writer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
}

// Start launches the process. It does not wait for readiness; see WaitReady.
func (s *Service) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("%s: already running", s.Name)
	}
	cmd := exec.Command(s.Bin, s.Args...)
	cmd.Env = append(os.Environ(), s.Env...)
	out := s.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	s.cmd, s.done = cmd, done
	return nil
}

// WaitReady polls ReadyURL until it answers 200, the process exits, or ctx ends.
func (s *Service) WaitReady(ctx context.Context) error {
	if s.ReadyURL == "" {
		return nil
	}
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	client := &http.Client{Timeout: time.Second}
	var last string
	for {
		if resp, err := client.Get(s.ReadyURL); err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		select {
		case err := <-done:
			done <- err // Stop and Kill wait for it too
			return fmt.Errorf("%s exited before it was ready: %v", s.Name, err)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready (%s): %w", s.Name, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits up to grace for a clean exit, then kills the process. It returns
// the process's exit error when it did not exit cleanly.
func (s *Service) Stop(grace time.Duration) error {
	return s.signal(syscall.SIGTERM, grace)
}

// Kill sends SIGKILL: no shutdown code runs, as in a crash or an OOM kill.
func (s *Service) Kill() error {
	return s.signal(syscall.SIGKILL, 10*time.Second)
}

func (s *Service) signal(sig syscall.Signal, grace time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case err := <-done:
		if sig == syscall.SIGKILL {
			return nil
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("%s exited: %w", s.Name, err)
		}
		return err
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not stop within %v and was killed", s.Name, grace)
	}
}

// Pid is the running process's id, 0 when it is not running.
func (s *Service) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Running reports whether the process was started and not yet stopped.
func (s *Service) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}
