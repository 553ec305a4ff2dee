package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/e2e/callbacks"
	"github.com/orderpipe/pipeline/e2e/stack"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

// TestMakeRun is `make run` on a machine with nothing configured: devstack embeds Kafka and
// Redis, starts every service, and the pipeline turns a signed callback into a unified event.
// It runs on devstack's fixed ports (those the README prints), so a `make run` left running
// here makes it fail, saying so.
//
// It failed before the dispatcher's topic check learned to wait for topics it had just created:
// the dispatcher stopped at start on every fresh embedded broker, and `make run` with it.
func TestMakeRun(t *testing.T) {
	for _, addr := range []string{embeddedKafka, embeddedRedis, ingressAddr, sandboxAddr, elemeSBAddr,
		"127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083", "127.0.0.1:8084"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("devstack's port %s is taken (is a `make run` running?): %v", addr, err)
		}
		l.Close()
	}
	bin := t.TempDir()
	if err := stack.Build("../../..", bin); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // devstack writes its logs under .run/devstack here
	getenv := func(k string) string { return "" }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testenv.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-bin", bin}, getenv, out) }()
	logs := func() string {
		var b strings.Builder
		files, _ := filepath.Glob(filepath.Join(".run", "devstack", "*.log"))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			fmt.Fprintf(&b, "--- %s (last lines)\n%s\n", f, strings.Join(lines[max(0, len(lines)-5):], "\n"))
		}
		return b.String()
	}
	up := time.After(90 * time.Second)
	for !strings.Contains(out.String(), "The pipeline is up.") {
		select {
		case err := <-done:
			t.Fatalf("devstack stopped before the pipeline was up: %v\n%s\n%s", err, out, logs())
		case <-up:
			t.Fatalf("the pipeline was not up within 90 s:\n%s\n%s", out, logs())
		case <-time.After(100 * time.Millisecond):
		}
	}

	now := time.Now()
	push := callbacks.Eleme{
		AppID: demoElemeAppID, RequestID: fmt.Sprint(now.UnixNano()), Type: 56,
		Message: fmt.Sprintf(`{"orderId":"1201961795738011871","state":"completed","subState":"noSubstate","shopId":968861,"updateAt":%d}`, now.UnixMilli()),
		ShopID:  "968861", Timestamp: now.UnixMilli(), UserID: "62864532",
	}
	resp, err := http.Post("http://"+ingressAddr+"/v1/callbacks/eleme", "application/json", bytes.NewReader(push.Body(demoElemeSecret)))
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(reply)) != `{"message":"ok"}` {
		t.Fatalf("ingress replied %d %s", resp.StatusCode, reply)
	}

	events := &testenv.Buffer{}
	tctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	defer tcancel()
	go func() { _ = tail(tctx, []string{schemas.TopicStatus}, getenv, events) }()
	for !strings.Contains(events.String(), "1201961795738011871") {
		select {
		case <-tctx.Done():
			t.Fatalf("no unified event for the callback on %s within 60 s:\n%s", schemas.TopicStatus, logs())
		case <-time.After(100 * time.Millisecond):
		}
	}
	tcancel()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("devstack stopped with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("devstack did not stop within 60 s of its context ending")
	}
}
