package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBodiesOnOneConnection: the handler reads an announced body to its last byte and closes it
// (so net/http has nothing left to discard before the reply). Callbacks keep following each
// other on one kept-alive connection, a chunked body is still bounded by MaxBody, a body shorter
// than announced is refused, and every accepted body is written whole.
func TestBodiesOnOneConnection(t *testing.T) {
	r := newRig(t)
	host := strings.TrimPrefix(r.url, "http://")
	body := elmBody(t, 12, `{"orderId":"B1","state":"valid"}`, elmSecret)

	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	exchange := func(raw string, want int) {
		t.Helper()
		if _, err := conn.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the reply: %v", err)
		}
		var reply strings.Builder
		_, _ = bufio.NewReader(res.Body).WriteTo(&reply)
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("status %d (%s), want %d", res.StatusCode, reply.String(), want)
		}
	}
	announced := func(b string, n int) string {
		return fmt.Sprintf("POST /v1/callbacks/eleme HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", n, b)
	}
	exchange(announced(body, len(body)), http.StatusOK)
	exchange(announced(body, len(body)), http.StatusOK)
	big := strings.Repeat(" ", 2<<10) // over the rig's MaxBody of 1 KiB
	exchange(fmt.Sprintf("POST /v1/callbacks/eleme HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big), http.StatusRequestEntityTooLarge)

	short, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	_ = short.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := short.Write([]byte(announced(body, len(body)+10))); err != nil {
		t.Fatal(err)
	}
	_ = short.(*net.TCPConn).CloseWrite()
	res, err := http.ReadResponse(bufio.NewReader(short), nil)
	if err != nil {
		t.Fatalf("reading the short body's reply: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("a body shorter than announced: status %d, want 400", res.StatusCode)
	}

	recs := r.records(t)
	if len(recs) != 2 {
		t.Fatalf("%d records, want the 2 accepted callbacks", len(recs))
	}
	for i, m := range recs {
		if got := envelopeOf(t, m).Body; string(got) != body {
			t.Errorf("record %d body %s, want %s", i, got, body)
		}
	}
}
