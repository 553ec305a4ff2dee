package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/orderpipe/pipeline/e2e/callbacks"
	"github.com/orderpipe/pipeline/e2e/stack"
	"github.com/orderpipe/pipeline/schemas"
)

// Fixed addresses of the demo stack. The callback port is the contract's default.
const (
	embeddedKafka = "127.0.0.1:19092"
	embeddedRedis = "127.0.0.1:16379"
	ingressAddr   = "127.0.0.1:8080"
	sandboxAddr   = "127.0.0.1:8090"

	// Demo credentials. The Dangdang shop is the made-up one of docs/specs/platforms.md §3.2, which the
	// dispatcher's default routing table names "demo".
	demoDianwodaSecret = "demo-dianwoda-secret"
	demoElemeAppID     = "62933118"
	demoElemeSecret    = "demo-eleme-secret"
	demoDangdangKey    = "2100000000"
	demoDangdangSecret = "test_secret"
	demoDangdangSess   = "SESSIONKEY"
)

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	bin := fs.String("bin", "bin", "directory holding the ingress, normalizer, dispatcher and ddsandbox binaries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	brokers := strings.Join(brokersFrom(getenv), ",")
	if getenv("KAFKA_BROKERS") == "" {
		cluster, err := kfake.NewCluster(kfake.Ports(19092), kfake.NumBrokers(1), kfake.DefaultNumPartitions(12))
		if err != nil {
			return fmt.Errorf("embedded kafka on %s: %w (is another devstack running?)", embeddedKafka, err)
		}
		defer cluster.Close()
		printf(stdout, "embedded Kafka (kfake) on %s — set KAFKA_BROKERS to use a real one\n", embeddedKafka)
	}
	redisAddr := getenv("REDIS_ADDR")
	if redisAddr == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr(embeddedRedis); err != nil {
			return fmt.Errorf("embedded redis on %s: %w", embeddedRedis, err)
		}
		defer mr.Close()
		redisAddr = embeddedRedis
		printf(stdout, "embedded Redis (miniredis) on %s — set REDIS_ADDR to use a real one\n", embeddedRedis)
	}

	logDir := filepath.Join(".run", "devstack")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	common := []string{"KAFKA_BROKERS=" + brokers, "REDIS_ADDR=" + redisAddr, "LOG_LEVEL=" + orDefault(getenv("LOG_LEVEL"), "info")}
	services := []*stack.Service{
		{Name: "ddsandbox", Bin: filepath.Join(*bin, "ddsandbox"),
			Env:      []string{"SANDBOX_ADDR=" + sandboxAddr, "SANDBOX_SHOPS=" + demoDangdangKey + "=" + demoDangdangSecret},
			ReadyURL: "http://" + sandboxAddr + "/sandbox/stats"},
		{Name: "ingress", Bin: filepath.Join(*bin, "ingress"),
			Env: append([]string{"HTTP_ADDR=" + ingressAddr, "OPS_ADDR=127.0.0.1:8081",
				"DIANWODA_SECRETS=" + demoDianwodaSecret, "ELEME_SECRETS=" + demoElemeAppID + "=" + demoElemeSecret}, common...),
			ReadyURL: "http://127.0.0.1:8081/readyz"},
		{Name: "normalizer", Bin: filepath.Join(*bin, "normalizer"),
			Env: append([]string{"OPS_ADDR=127.0.0.1:8082"}, common...), ReadyURL: "http://127.0.0.1:8082/readyz"},
		{Name: "dispatcher", Bin: filepath.Join(*bin, "dispatcher"),
			Env:      append([]string{"OPS_ADDR=127.0.0.1:8083", "DANGDANG_API_URL=http://" + sandboxAddr + "/openapi/rest"}, common...),
			ReadyURL: "http://127.0.0.1:8083/readyz"},
	}
	for _, s := range services {
		f, err := os.Create(filepath.Join(logDir, s.Name+".log"))
		if err != nil {
			return err
		}
		defer f.Close()
		s.Output = f
		if err := s.Start(); err != nil {
			return err
		}
		defer s.Stop(15 * time.Second)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, s := range services {
		if err := s.WaitReady(wctx); err != nil {
			return fmt.Errorf("%w (log: %s)", err, filepath.Join(logDir, s.Name+".log"))
		}
	}
	banner(stdout)
	<-ctx.Done()
	printf(stdout, "\nstopping…\n")
	return nil
}

func banner(w io.Writer) {
	now := time.Now()
	dwd := callbacks.NewDianwoda(demoDianwodaSecret, callbacks.DianwodaContent{
		OrderOriginalID: "DD1719544796", OrderStatus: "completed", ActionCode: "customer_sign",
		RiderCode: "10088", RiderName: "张德顺", RiderMobile: "13600000000", TimeStatusUpdate: now.UnixMilli(),
	}, fmt.Sprintf("demo%d", now.UnixNano()), 1, now.UnixMilli(), "123456")
	ele := callbacks.Eleme{
		AppID: demoElemeAppID, RequestID: fmt.Sprint(now.UnixNano()), Type: 56,
		Message: fmt.Sprintf(`{"orderId":"1201961795738011871","state":"completed","subState":"noSubstate","shopId":968861,"name":"王五","phone":"13700000000","updateAt":%d}`, now.UnixMilli()),
		ShopID:  "968861", Timestamp: now.UnixMilli(), UserID: "62864532",
	}
	dwdURL := "http://" + ingressAddr + "/v1/callbacks/dianwoda?" + dwd.Query.Encode()
	printf(w, `
The pipeline is up.
  callbacks   POST http://%[1]s/v1/callbacks/dianwoda   POST http://%[1]s/v1/callbacks/eleme
  ops         ingress http://127.0.0.1:8081  normalizer http://127.0.0.1:8082  dispatcher http://127.0.0.1:8083  (/healthz /readyz /metrics)
  Dangdang    sandbox http://%[2]s/openapi/rest (state: http://%[2]s/sandbox/orders, calls: /sandbox/calls)
  logs        .run/devstack/*.log

A signed Dianwoda callback (order DD1719544796 delivered; routed to Dangdang shop "demo"):

curl -sS '%[3]s' -H 'Content-Type: application/json' --data-binary '%[4]s'

A signed Eleme callback (type 56, delivered):

curl -sS 'http://%[1]s/v1/callbacks/eleme' -H 'Content-Type: application/json' --data-binary '%[5]s'

See the unified events (Ctrl-C to stop):

bin/devstack tail %[6]s          # also: %[7]s, %[8]s, %[9]s

Then the Dangdang sandbox's view of order 1719544796:

curl -sS http://%[2]s/sandbox/orders/2100000000/1719544796

Ctrl-C here stops everything.
`, ingressAddr, sandboxAddr, dwdURL, shellQuote(dwd.Body), shellQuote(ele.Body(demoElemeSecret)),
		schemas.TopicStatus, schemas.TopicRaw, schemas.TopicDelivery, schemas.TopicDangdangResult)
}

// shellQuote makes b safe inside single quotes.
func shellQuote(b []byte) string { return strings.ReplaceAll(string(b), "'", `'\''`) }

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
