package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/plumbing/testenv"
)

var signer = Signer{DianwodaSecret: "d-secret", ElemeAppID: "62933118", ElemeSecret: "e-secret"}

func TestFlatOutAgainstNoop(t *testing.T) {
	srv := httptest.NewServer(NoopHandler())
	defer srv.Close()
	res, err := Run(context.Background(), Config{
		DianwodaURL: srv.URL + "/v1/callbacks/dianwoda", ElemeURL: srv.URL + "/v1/callbacks/eleme",
		Signer: signer, Conns: 4, Duration: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.OK != res.Sent || res.ByStatus[200] != res.Sent {
		t.Fatalf("%v", res)
	}
	if !(res.P50 <= res.P99 && res.P99 <= res.P999 && res.P999 <= res.Max && res.P50 > 0) {
		t.Errorf("quantiles out of order: %v", res)
	}
}

func TestFixedRate(t *testing.T) {
	srv := httptest.NewServer(NoopHandler())
	defer srv.Close()
	res, err := Run(context.Background(), Config{
		DianwodaURL: srv.URL + "/v1/callbacks/dianwoda", Signer: signer, Conns: 4, Rate: 200, Duration: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent < 150 || res.Sent > 202 {
		t.Errorf("sent %d at 200/s for 1s", res.Sent)
	}
}

// TestOrdersWalkTheirFlow: each order's callbacks come out in its flow's order, both platforms
// appear, and Eleme order ids exceed 2^53.
func TestOrdersWalkTheirFlow(t *testing.T) {
	g := NewOrders(signer, "t-", []string{"dianwoda", "eleme"})
	seen := map[string][]string{}
	for range 200 {
		cb := g.Next(time.Now())
		var id, state string
		if cb.Platform == "dianwoda" {
			var raw map[string]map[string]any
			_ = json.Unmarshal(cb.Body, &raw)
			id, state = raw["content"]["order_original_id"].(string), raw["content"]["order_status"].(string)
		} else {
			var env struct{ Message string }
			if err := json.Unmarshal(cb.Body, &env); err != nil {
				t.Fatal(err)
			}
			var m struct{ OrderID, State string }
			_ = json.Unmarshal([]byte(env.Message), &m)
			id, state = m.OrderID, m.State
			if len(id) < 17 {
				t.Errorf("eleme order id %s is not above 2^53", id)
			}
		}
		seen[cb.Platform+":"+id] = append(seen[cb.Platform+":"+id], state)
	}
	wantD := "created,dispatched,arrived,obtained,completed"
	wantE := "valid,tobeAssignedCourier,tobeFetched,arrived,delivering,completed,settled"
	var d, e int
	for k, states := range seen {
		want := wantE
		if strings.HasPrefix(k, "dianwoda:") {
			want, d = wantD, d+1
		} else {
			e++
		}
		if !strings.HasPrefix(want, strings.Join(states, ",")) {
			t.Errorf("%s went %v", k, states)
		}
	}
	if d == 0 || e == 0 {
		t.Errorf("dianwoda orders %d, eleme orders %d", d, e)
	}
}

// TestAgainstIngress builds and runs the real ingress against the real broker and checks that
// every callback the load generator signs (independently of the ingress's code) is accepted.
func TestAgainstIngress(t *testing.T) {
	brokers := testenv.Kafka(t)
	root := os.Getenv("ORDERPIPE_ROOT")
	if root == "" {
		t.Skip("ORDERPIPE_ROOT unset; run under make test")
	}
	bin := filepath.Join(t.TempDir(), "ingress")
	build := exec.Command("go", "build", "-o", bin, "./ingress")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ingress: %v\n%s", err, out)
	}
	httpAddr, opsAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"KAFKA_BROKERS="+strings.Join(brokers, ","), "HTTP_ADDR="+httpAddr, "OPS_ADDR="+opsAddr,
		"TOPIC_RAW="+testenv.Name(t, "raw"), "TOPIC_PARTITIONS=3", "INGRESS_DRAIN_DELAY=0s",
		"DIANWODA_SECRETS="+signer.DianwodaSecret, "ELEME_SECRETS="+signer.ElemeAppID+"="+signer.ElemeSecret)
	var logs testenv.Buffer // written by the process's copy goroutine, read on failure
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + opsAddr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingress not ready:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// At least 100 callbacks, every one accepted. This checks signatures, not speed: on a machine
	// busy with other tests (a cold make test compiles beside it) a 1.5 s run once sent only 77,
	// so runs repeat until 100 were sent.
	var sent int64
	for runs := 0; sent < 100; runs++ {
		if runs == 20 {
			t.Fatalf("only %d callbacks sent in %d runs of 1.5 s\n%s", sent, runs, logs.String())
		}
		res, err := Run(context.Background(), Config{
			DianwodaURL: "http://" + httpAddr + "/v1/callbacks/dianwoda", ElemeURL: "http://" + httpAddr + "/v1/callbacks/eleme",
			Signer: signer, Conns: 4, Rate: 200, Duration: 1500 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.OK != res.Sent {
			t.Fatalf("%v\n%s", res, logs.String())
		}
		sent += res.Sent
		t.Log(res)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr())
}
