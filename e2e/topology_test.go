package e2e_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderpipe/pipeline/e2e/chaos"
	"github.com/orderpipe/pipeline/e2e/stack"
	"github.com/orderpipe/pipeline/e2e/topo"
	"github.com/orderpipe/pipeline/plumbing/kafkaio"
	"github.com/orderpipe/pipeline/plumbing/retry"
	"github.com/orderpipe/pipeline/plumbing/testenv"
	"github.com/orderpipe/pipeline/schemas"
)

// The production topology of the reliability proof (issue 13): a three-node Kafka cluster (every
// topic RF 3, min.insync.replicas=2), Redis Sentinel (Redis Cluster in its own scenario), two
// ingress instances behind the workload's round robin, two normalizers and two dispatchers in
// their groups, and the Dangdang sandbox with two shops.

// The two Dangdang shops: DD orders whose second-to-last digit is even go to shop A, odd to B
// (the workload numbers Dianwoda orders with even numbers only).
const (
	shopAKey, shopBKey = "2100000000", "2100000001"
	topoShops          = `shops:
  shopa: {app_key: "` + shopAKey + `", app_secret: test_secret, session: SESSIONA, rate_per_second: 20, burst: 20, concurrency: 2}
  shopb: {app_key: "` + shopBKey + `", app_secret: test_secret_b, session: SESSIONB, rate_per_second: 20, burst: 20, concurrency: 2}
`
	topoRoutes = `routes:
  - name: delivery-events
    match: {kind: delivery}
    to: {topic: "${TOPIC_DELIVERY}"}
  - name: order-events
    match: {kind: order}
    to: {topic: "${TOPIC_LIFECYCLE}"}
  - name: refund-events
    match: {kind: refund}
    to: {topic: "${TOPIC_REFUND}"}
  - name: dangdang-a
    match: {platform: dianwoda, kind: delivery, status: [delivered, delivery_failed], order_id: '^DD(?P<order>[0-9]*[02468][0-9])$'}
    to: {dangdang: {shop: shopa, order_id: "${order}"}}
  - name: dangdang-b
    match: {platform: dianwoda, kind: delivery, status: [delivered, delivery_failed], order_id: '^DD(?P<order>[0-9]*[13579][0-9])$'}
    to: {dangdang: {shop: shopb, order_id: "${order}"}}
`
)

// topoRedis says how the services reach Redis.
type topoRedis struct {
	// env returns the Redis variables of a service kind (normalizer, dispatcher, ingress).
	env  func(kind string) []string
	pids func() map[string]int
	name string
}

// topoPipe is one scenario's processes on the shared cluster.
type topoPipe struct {
	t          *testing.T
	kc         *topo.KafkaCluster
	topics     topics
	partitions int
	groups     [2]string
	common     []string
	redis      topoRedis
	logs       string
	sandboxURL string
	ingressURL []string
	sandbox    *stack.Service
	mu         sync.Mutex
	svc        map[string][]*stack.Service // kind → every instance started (running or not)
	n          map[string]int
}

// topoTopic is a scenario topic as a company runs it: RF 3, min.insync.replicas 2.
func topoTopic(name string, partitions int) kafkaio.TopicSpec {
	return kafkaio.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: 3,
		Configs: map[string]string{"min.insync.replicas": "2"}}
}

func startTopo(t *testing.T, kc *topo.KafkaCluster, rd topoRedis, partitions int, extraEnv []string) *topoPipe {
	t.Helper()
	tp := newTopics(t)
	var specs []kafkaio.TopicSpec
	for _, name := range tp.all() {
		specs = append(specs, topoTopic(name, partitions))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kc.Conn().EnsureTopics(ctx, specs...); err != nil {
		t.Fatalf("create topics: %v", err)
	}
	// The load starts once every new partition has its leader and three in-sync replicas.
	for _, name := range tp.all() {
		for {
			isr, err := kc.InSync(ctx, name)
			full := err == nil && len(isr) == partitions
			for _, n := range isr {
				full = full && n == 3
			}
			if full {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("topic %s: partitions not in sync: %v %v", name, isr, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(routes, []byte(topoRoutes), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &topoPipe{t: t, kc: kc, topics: tp, partitions: partitions, redis: rd, logs: dir,
		groups: [2]string{testenv.Name(t, "normalizer"), testenv.Name(t, "dispatcher")},
		svc:    map[string][]*stack.Service{}, n: map[string]int{}}
	sandboxAddr := freeAddr(t)
	p.sandboxURL = "http://" + sandboxAddr
	p.common = append(kc.Env(), []string{
		"REDIS_KEY_PREFIX=" + testenv.Name(t, "redis") + ":",
		"LOG_LEVEL=info", "TOPIC_AUTO_CREATE=false",
		"DANGDANG_API_URL=" + p.sandboxURL + "/openapi/rest", "DANGDANG_BATCH_WINDOW=200ms", "DANGDANG_SHOPS=" + topoShops, "ROUTES_FILE=" + routes,
		"DANGDANG_TIMEOUT=1s", "DANGDANG_BACKOFF_MIN=100ms", "DANGDANG_BACKOFF_MAX=2s", "DANGDANG_MAX_ATTEMPTS=1000",
		"DANGDANG_RATE_LIMIT_BACKOFF=1s", "DANGDANG_PAUSE_PROBE=1s",
	}...)
	p.common = append(p.common, tp.env()...)
	p.common = append(p.common, extraEnv...)
	p.sandbox = &stack.Service{Name: "ddsandbox", Bin: filepath.Join(binDir, "ddsandbox"),
		Env:      []string{"SANDBOX_ADDR=" + sandboxAddr, "SANDBOX_SHOPS=" + shopAKey + "=test_secret;" + shopBKey + "=test_secret_b"},
		ReadyURL: p.sandboxURL + "/sandbox/stats", Output: p.out("ddsandbox")}
	p.keep(p.sandbox)
	var all []*stack.Service
	for range 2 {
		all = append(all, p.newInstance("ingress"), p.newInstance("normalizer"), p.newInstance("dispatcher"))
	}
	all = append([]*stack.Service{p.sandbox}, all...)
	for _, s := range all {
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
	}
	waitReady(t, all...)
	return p
}

// out is the log file of one process; its last 16 KiB are printed when the test fails.
func (p *topoPipe) out(name string) *os.File { return processLog(p.t, p.logs, name, 16<<10) }

// keep stops s (SIGTERM) when the test ends.
func (p *topoPipe) keep(s *stack.Service) {
	p.t.Cleanup(func() {
		if err := s.Stop(20 * time.Second); err != nil {
			p.t.Logf("stop: %v", err)
		}
	})
}

// newInstance describes (does not start) one more instance of kind; every instance has its own
// ports, the ingress instances are the workload's targets.
func (p *topoPipe) newInstance(kind string) *stack.Service {
	p.mu.Lock()
	p.n[kind]++
	name := fmt.Sprintf("%s-%d", kind, p.n[kind])
	p.mu.Unlock()
	ops := freeAddr(p.t)
	env := append([]string{"OPS_ADDR=" + ops}, p.common...)
	env = append(env, p.redis.env(kind)...)
	switch kind {
	case "ingress":
		addr := freeAddr(p.t)
		env = append(env, "HTTP_ADDR="+addr, "DIANWODA_SECRETS="+testDianwodaSecret, "ELEME_SECRETS="+testElemeAppID+"="+testElemeSecret)
		p.ingressURL = append(p.ingressURL, "http://"+addr)
	case "normalizer":
		env = append(env, "KAFKA_GROUP_ID="+p.groups[0])
	case "dispatcher":
		env = append(env, "KAFKA_GROUP_ID="+p.groups[1])
	}
	s := &stack.Service{Name: name, Bin: filepath.Join(binDir, kind), Env: env, ReadyURL: "http://" + ops + "/readyz", Output: p.out(name)}
	p.mu.Lock()
	p.svc[kind] = append(p.svc[kind], s)
	p.mu.Unlock()
	p.keep(s)
	return s
}

// running returns the running instances of kind.
func (p *topoPipe) running(kind string) []*stack.Service {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*stack.Service
	for _, s := range p.svc[kind] {
		if s.Running() {
			out = append(out, s)
		}
	}
	return out
}

// pids names every running process by what it is, for the RSS samples.
func (p *topoPipe) pids() map[string][]int {
	out := map[string][]int{}
	for _, kind := range []string{"ingress", "normalizer", "dispatcher"} {
		for _, s := range p.running(kind) {
			if pid := s.Pid(); pid != 0 {
				out[kind] = append(out[kind], pid)
			}
		}
	}
	if pid := p.sandbox.Pid(); pid != 0 {
		out["ddsandbox"] = []int{pid}
	}
	for _, pid := range p.kc.Pids() {
		out["kafka"] = append(out["kafka"], pid)
	}
	for _, pid := range p.redis.pids() {
		out["redis"] = append(out["redis"], pid)
	}
	return out
}

// routeOf names the routed topics an event goes to (topoRoutes).
func (p *topoPipe) routeOf(ev schemas.StatusEvent) []string {
	switch ev.Kind {
	case "delivery":
		return []string{p.topics.Delivery}
	case "order":
		return []string{p.topics.Lifecycle}
	case "refund":
		return []string{p.topics.Refund}
	}
	return nil
}

// topoEnv is what a fault sees of its run.
type topoEnv struct {
	t   *testing.T
	p   *topoPipe
	kc  *topo.KafkaCluster
	sg  *topo.SentinelGroup
	rc  *topo.RedisCluster
	sb  chaos.Sandbox
	col *chaos.Collector
	d   time.Duration
	rng *rand.Rand

	mu               sync.Mutex
	log              []string
	faultAt, faultTo time.Time
	gone             map[string]bool // topics deleted on purpose
	checks           []func(r *chaos.Report)
}

func (e *topoEnv) note(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
}

// fault marks the first fault's moment; healed marks the end of the last one.
func (e *topoEnv) fault() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.faultAt.IsZero() {
		e.faultAt = time.Now()
	}
}

func (e *topoEnv) healed() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faultTo = time.Now()
}

type topoScenario struct {
	name string
	// cluster runs the scenario on the Redis Cluster instead of Sentinel.
	cluster bool
	fault   func(ctx context.Context, e *topoEnv)
	// costs names a check the scenario is known to cost (reported, not failed).
	costs string
	// minLoad stretches the load so that the fault fits in it.
	minLoad func(d time.Duration) time.Duration
	// settle bounds the wait for every acknowledged output after the load (default 60 s, or the
	// load if longer).
	settle time.Duration
}

// killRestart kills the node pick chooses with SIGKILL, waits down, starts it again and waits
// until every partition is back in sync.
func killRestart(ctx context.Context, e *topoEnv, what string, down time.Duration, pick func(e *topoEnv) (int, error)) {
	id, err := pick(e)
	if err != nil {
		e.t.Errorf("pick %s: %v", what, err)
		return
	}
	e.fault()
	if err := e.kc.Kill9(id); err != nil {
		e.t.Errorf("kill -9 node %d: %v", id, err)
		return
	}
	e.note("kill -9 kafka node %d (%s)", id, what)
	sleep(ctx, down)
	e.kc.Restart(id)
	e.note("kafka node %d restarted and answering", id)
	waitInSync(e, 60*time.Second)
	e.healed()
	e.note("kafka node %d back in sync", id)
}

// mostLeader is the node leading the most of the scenario's partitions. One metadata read gets
// 5 s; on a loaded machine one can time out (make test: "leaders: ... context deadline
// exceeded" before a broker-freeze), so it is asked again for up to 30 s.
func mostLeader(e *topoEnv) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var id int
	var counts map[int]int
	err := retry.Do(ctx, retry.Policy{Min: 200 * time.Millisecond, Max: 2 * time.Second}, func(ctx context.Context) error {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		id, counts, err = e.kc.MostLeader(ictx, e.p.topics.all())
		return err
	}, nil)
	e.note("leaders per node: %v", counts)
	return id, err
}

// waitInSync waits until every partition of the scenario's status and raw topics has 3 in-sync
// replicas again (what an operator waits for before touching the next broker).
func waitInSync(e *topoEnv, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		ok := true
		for _, topic := range []string{e.p.topics.Raw, e.p.topics.Status} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			isr, err := e.kc.InSync(ctx, topic)
			cancel()
			if err != nil || len(isr) == 0 {
				ok = false
				break
			}
			for _, n := range isr {
				if n < 3 {
					ok = false
				}
			}
		}
		if ok {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	e.note("partitions not fully in sync after %s", limit)
}

// rollConsumers replaces every normalizer and dispatcher instance one at a time: the replacement
// starts, is ready and has joined the consumer group (the coordinator counts it and the group is
// stable again) before the old one gets SIGTERM.
func rollConsumers(ctx context.Context, e *topoEnv) {
	for i, kind := range []string{"normalizer", "dispatcher"} {
		group := e.p.groups[i]
		for _, old := range e.p.running(kind) {
			// The roll completes even if the load ended first (said in the log): a half-rolled
			// deployment is not the scenario.
			if ctx.Err() != nil {
				e.note("the load ended before %s was replaced", old.Name)
			}
			s := e.p.newInstance(kind)
			if err := s.Start(); err != nil {
				e.t.Errorf("start %s: %v", s.Name, err)
				return
			}
			rctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			err := s.WaitReady(rctx)
			cancel()
			if err != nil {
				e.t.Errorf("%s: %v", s.Name, err)
				return
			}
			want := len(e.p.running(kind))
			joined := time.Now()
			members, state := 0, ""
			for time.Since(joined) < 30*time.Second {
				gctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				members, state, err = topo.GroupMembers(gctx, e.kc.Conn(), group)
				cancel()
				if err == nil && members >= want && state == "Stable" {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if members < want || state != "Stable" {
				e.note("%s: group %s has %d members (%s, %v), want %d; stopping %s anyway", s.Name, kind, members, state, err, want, old.Name)
			}
			if err := old.Stop(20 * time.Second); err != nil {
				e.t.Errorf("stop %s: %v", old.Name, err)
			}
			e.note("%s ready and in the group (%d members, after %s), %s stopped (SIGTERM)", s.Name, members, time.Since(joined).Round(time.Millisecond), old.Name)
		}
	}
}

func topoScenarios() []topoScenario {
	return []topoScenario{
		{name: "topo-baseline"},
		// Issue 13's scenario 1: the broker leading the most partitions, then the active controller,
		// each killed with SIGKILL and restarted; both happen even if the load ended first.
		{name: "broker-kill9", minLoad: func(d time.Duration) time.Duration { return max(d, 12*time.Second) }, fault: func(ctx context.Context, e *topoEnv) {
			if !sleep(ctx, e.d/5) {
				return
			}
			killRestart(ctx, e, "leads the most partitions", max(e.d/5, 3*time.Second), mostLeader)
			sleep(ctx, e.d/10)
			killRestart(ctx, e, "the active controller", max(e.d/5, 3*time.Second), func(e *topoEnv) (int, error) { return e.kc.ActiveController() })
		}},
		{name: "broker-rolling-restart", minLoad: func(d time.Duration) time.Duration { return max(d, 20*time.Second) }, fault: func(ctx context.Context, e *topoEnv) {
			if !sleep(ctx, e.d/6) {
				return
			}
			e.fault()
			for id := 1; id <= 3; id++ {
				t0 := time.Now()
				if err := e.kc.Stop(id); err != nil {
					e.t.Errorf("stop node %d: %v", id, err)
				}
				e.note("kafka node %d stopped (SIGTERM, controlled shutdown) in %s", id, time.Since(t0).Round(time.Millisecond))
				e.kc.Restart(id)
				waitInSync(e, 60*time.Second)
				e.note("kafka node %d back and in sync", id)
			}
			e.healed()
		}},
		{name: "broker-freeze", minLoad: func(d time.Duration) time.Duration { return max(d, topo.ReplicaLagTime+8*time.Second) }, fault: func(ctx context.Context, e *topoEnv) {
			if !sleep(ctx, e.d/5) {
				return
			}
			id, err := mostLeader(e)
			if err != nil {
				e.t.Errorf("leaders: %v", err)
				return
			}
			e.fault()
			if err := e.kc.Freeze(id); err != nil {
				e.t.Errorf("freeze: %v", err)
				return
			}
			e.note("SIGSTOP kafka node %d for %s (replica.lag.time.max.ms %s)", id, topo.ReplicaLagTime+3*time.Second, topo.ReplicaLagTime)
			time.Sleep(topo.ReplicaLagTime + 3*time.Second)
			ictx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			parts, err := e.kc.Partitions(ictx, e.p.topics.Status)
			cancel()
			e.note("while frozen, the status topic's partitions (asked of the other nodes): %s %v", parts, err)
			if err := e.kc.Thaw(id); err != nil {
				e.t.Errorf("thaw: %v", err)
			}
			e.note("SIGCONT kafka node %d", id)
			waitInSync(e, 60*time.Second)
			e.healed()
			e.note("kafka node %d back in sync", id)
		}},
		{name: "redis-sentinel-failover", costs: "wrong-final", fault: func(ctx context.Context, e *topoEnv) {
			if !sleep(ctx, e.d/3) {
				return
			}
			e.fault()
			oldP, newP, took, err := e.sg.FailPrimary(ctx, time.Second)
			if err != nil {
				e.t.Errorf("sentinel failover: %v", err)
				return
			}
			e.healed()
			e.note("kill -9 redis primary %s; sentinels promoted %s after %s; old primary back as a replica", oldP, newP, took.Round(time.Millisecond))
		}},
		{name: "redis-cluster-failover", cluster: true, costs: "wrong-final", fault: func(ctx context.Context, e *topoEnv) {
			if !sleep(ctx, e.d/3) {
				return
			}
			e.fault()
			killed, took, err := e.rc.FailPrimary(ctx, time.Second)
			if err != nil {
				e.t.Errorf("cluster failover: %v", err)
				return
			}
			e.healed()
			e.note("kill -9 redis cluster primary %s; its replica took over after %s; it is back as a replica", killed, took.Round(time.Millisecond))
		}},
		{name: "consumers-rolling-restart", minLoad: func(d time.Duration) time.Duration { return max(d, 25*time.Second) }, fault: func(ctx context.Context, e *topoEnv) {
			if !sleep(ctx, min(e.d/6, 2*time.Second)) {
				return
			}
			e.fault()
			rollConsumers(ctx, e)
			e.note("first round done")
			rollConsumers(ctx, e)
			e.healed()
			e.note("second round done")
		}},
		{name: "consumers-kill9", minLoad: func(d time.Duration) time.Duration { return max(d, 10*time.Second) }, fault: func(ctx context.Context, e *topoEnv) {
			for round := 0; ; round++ {
				lo := max(time.Second, e.d/8)
				if !sleep(ctx, lo+time.Duration(e.rng.Int64N(int64(lo)))) {
					return
				}
				kind := []string{"normalizer", "dispatcher"}[round%2]
				rs := e.p.running(kind)
				if len(rs) == 0 {
					continue
				}
				victim := rs[e.rng.IntN(len(rs))]
				e.fault()
				if err := kill9Restart(victim, time.Duration(200+e.rng.IntN(800))*time.Millisecond, e.note); err != nil {
					e.t.Error(err)
					return
				}
				e.healed()
				e.note("%s restarted and ready", victim.Name)
			}
		}},
		{name: "dangdang-shop-176", minLoad: func(d time.Duration) time.Duration { return max(d, shop176Window()+6*time.Second) }, fault: func(ctx context.Context, e *topoEnv) {
			if !sleep(ctx, 2*time.Second) {
				return
			}
			e.fault()
			if err := e.sb.Fault(ctx, map[string]any{"kind": "expired", "shop": shopBKey}); err != nil {
				e.t.Errorf("arm 176: %v", err)
				return
			}
			from := time.Now()
			e.note("shop B (%s) answers 176 for %s", shopBKey, shop176Window())
			sleep(ctx, shop176Window())
			_ = e.sb.ClearFaults(context.Background())
			to := time.Now()
			e.healed()
			e.note("shop B healed")
			// While B was paused, A and the topics kept flowing.
			e.mu.Lock()
			e.checks = append(e.checks, func(r *chaos.Report) {
				a, topicsFlow := e.flowDuring(from, to)
				r.Details = append(r.Details, fmt.Sprintf("while shop B answered 176: %d shop A acceptances, %d routed records", a, topicsFlow))
				if a == 0 || topicsFlow == 0 {
					e.t.Errorf("while shop B answered 176 the rest stalled: %d shop A acceptances, %d routed records", a, topicsFlow)
				}
			})
			e.mu.Unlock()
		}},
		// The destination is gone for the rest of the load, then the operator restores it: the
		// events routed to it while it was gone wait (never dropped, never committed past) and
		// flow once it is back, so both groups' lag returns to zero. A dispatcher that cannot
		// write a destination for destinationFailAfter says so (readiness false): asserted when
		// the outage outlasts it (the long run).
		{name: "routed-topic-deleted", settle: 60 * time.Second, fault: func(ctx context.Context, e *topoEnv) {
			if !sleep(ctx, e.d/3) {
				return
			}
			gone := e.p.topics.Lifecycle
			e.fault()
			dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := e.kc.DeleteTopic(dctx, gone)
			cancel()
			if err != nil {
				e.t.Errorf("delete %s: %v", gone, err)
				return
			}
			from := time.Now()
			// Does a dispatcher that cannot write a destination say so (readiness false)?
			var ready, notReady atomic.Int64
			go func() {
				client := &http.Client{Timeout: time.Second}
				for sleep(ctx, 500*time.Millisecond) {
					for _, s := range e.p.running("dispatcher") {
						resp, err := client.Get(s.ReadyURL)
						if err != nil {
							continue
						}
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							ready.Add(1)
						} else {
							notReady.Add(1)
						}
					}
				}
			}()
			e.mu.Lock()
			e.gone[gone] = true
			e.mu.Unlock()
			e.note("routed topic %s deleted", gone)
			// Gone for the rest of the load, and at least minOutage: long enough for the other
			// destinations to show they flow (the short form's load is seconds long).
			<-ctx.Done()
			const minOutage = 10 * time.Second
			time.Sleep(minOutage - time.Since(from))
			outage := time.Since(from)
			a, flow := e.flowDuring(from, time.Now())
			rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = e.kc.Conn().EnsureTopics(rctx, topoTopic(gone, e.p.partitions))
			cancel()
			if err != nil {
				e.t.Errorf("restore %s: %v", gone, err)
				return
			}
			e.healed()
			e.note("routed topic %s restored after %s", gone, outage.Round(time.Second))
			e.mu.Lock()
			e.checks = append(e.checks, func(r *chaos.Report) {
				r.Details = append(r.Details, fmt.Sprintf("while %s was gone (%s): %d Dangdang acceptances, %d records on the other routed topics; dispatchers' /readyz polled: %d ready, %d not ready",
					gone, outage.Round(time.Second), a, flow, ready.Load(), notReady.Load()))
				if flow == 0 {
					e.t.Errorf("while %s was gone the other routed topics stalled", gone)
				}
				if outage > destinationFailAfter+5*time.Second && notReady.Load() == 0 {
					e.t.Errorf("%s was gone for %s and no dispatcher turned not ready", gone, outage.Round(time.Second))
				}
			})
			e.mu.Unlock()
		}},
	}
}

// destinationFailAfter is how long a dispatcher's writes to one destination fail before its
// readiness turns false (produce.Producer.FailAfter's default).
const destinationFailAfter = 30 * time.Second

// shop176Window is how long a Dangdang shop answers 176: five minutes in a long run
// (CHAOS_176_WINDOW), 12 s in the short form.
func shop176Window() time.Duration { return envDuration("CHAOS_176_WINDOW", 12*time.Second) }

// flowDuring counts the Dangdang acceptances of shop A and the records on the routed topics not
// deleted, first seen in [from, to).
func (e *topoEnv) flowDuring(from, to time.Time) (shopA, routed int) {
	e.col.Inspect(func(c *chaos.Collector) {
		for _, r := range c.Results {
			if r.Outcome == "accepted" && !r.SeenAt.Before(from) && r.SeenAt.Before(to) && len(r.Key) >= 2 && strings.ContainsAny(r.Key[len(r.Key)-2:len(r.Key)-1], "02468") {
				shopA++
			}
		}
		for topic, recs := range c.Routed {
			if e.gone[topic] {
				continue
			}
			for _, s := range recs {
				if !s.SeenAt.Before(from) && s.SeenAt.Before(to) {
					routed++
				}
			}
		}
	})
	return shopA, routed
}

// TestTopology runs the scenarios of the production topology, one after another on one Kafka
// cluster and one Sentinel group of the test's own (the Redis Cluster is started for its
// scenario). `make test` runs it short (CHAOS_DURATION 6s of load per scenario at CHAOS_RATE
// 40/s, shop B's 176 for 20 s); `make chaos` long, writing the table to docs/reliability.md.
// One scenario: -run TestTopology/<name> (the cluster starts whatever the filter).
func TestTopology(t *testing.T) {
	d := envDuration("CHAOS_DURATION", 6*time.Second)
	rate := envFloat("CHAOS_RATE", 40)
	t0 := time.Now()
	kc := topo.StartKafkaCluster(t)
	sg := topo.StartSentinel(t)
	t.Logf("kafka cluster and sentinel group up in %s", time.Since(t0).Round(time.Millisecond))
	var rc *topo.RedisCluster
	var reports []*chaos.Report
	for _, sc := range topoScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			if sc.cluster && rc == nil {
				rc = topo.StartRedisCluster(t)
			}
			if r := runTopoScenario(t, sc, kc, sg, rc, d, rate); r != nil {
				reports = append(reports, r)
			}
		})
	}
	t.Logf("topology suite: %s wall", time.Since(t0).Round(time.Second))
	topoTable.publish(t, reports, d, rate)
}

// topoTable is the table of TestTopology, with every scenario's details.
var topoTable = reportTable{name: "topology", marker: "topo-table", header: chaos.TopoHeader, row: (*chaos.Report).TopoRow,
	loadNote: " (longer where the fault needs it)", detailed: func(*chaos.Report) bool { return true }}

func sentinelRedis(sg *topo.SentinelGroup) topoRedis {
	return topoRedis{name: "sentinel", pids: sg.Pids, env: func(string) []string {
		return []string{"REDIS_ADDR=" + strings.Join(sg.Sentinels, ","), "REDIS_MASTER_NAME=" + sg.MasterName}
	}}
}

func runTopoScenario(t *testing.T, sc topoScenario, kc *topo.KafkaCluster, sg *topo.SentinelGroup, rc *topo.RedisCluster, d time.Duration, rate float64) *chaos.Report {
	if sc.minLoad != nil {
		d = sc.minLoad(d)
	}
	rd := sentinelRedis(sg)
	if sc.cluster {
		rd = topoRedis{name: "cluster", pids: rc.Pids, env: func(string) []string {
			return []string{"REDIS_ADDR=" + strings.Join(rc.Addrs, ","), "REDIS_CLUSTER=true"}
		}}
	}
	// Four partitions: two per instance of each group, and half the replicas and collector
	// readers of six on this 2-core machine.
	const partitions = 4
	p := startTopo(t, kc, rd, partitions, nil)
	e := &topoEnv{t: t, p: p, kc: kc, sg: sg, rc: rc, d: d, sb: chaos.Sandbox{URL: p.sandboxURL},
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13)), gone: map[string]bool{}}
	col := chaos.StartCollector(kc.Conn(), chaos.Topics{Raw: p.topics.Raw, RawDLQ: p.topics.RawDLQ, Status: p.topics.Status,
		Results: p.topics.Results, StatusDLQ: p.topics.StatusDLQ, Routed: []string{p.topics.Delivery, p.topics.Lifecycle, p.topics.Refund}}, partitions)
	defer col.Stop()
	e.col = col
	obs := topo.Observe(kc.Conn(), []topo.Group{{ID: p.groups[0], Topic: p.topics.Raw}, {ID: p.groups[1], Topic: p.topics.Status}},
		p.pids, 250*time.Millisecond)
	defer obs.Stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopFault, waitFault := startFault(ctx, d, sc.fault, e)
	defer stopFault()
	l := chaos.Drive(ctx, chaos.Config{
		IngressURLs: p.ingressURL, Rate: rate, Duration: d, Drain: max(60*time.Second, d), Workers: 16, Mix: chaos.DefaultMix,
		Signer: chaos.Signer{DianwodaSecret: testDianwodaSecret, ElemeAppID: testElemeAppID, ElemeSecret: testElemeSecret},
	})
	waitFault() // a fault that started finishes (restarts what it stopped) even after the load
	stopFault()
	settle := sc.settle
	if settle == 0 {
		settle = 60 * time.Second
	}
	settled, why := chaos.Settle(ctx, l, col, 2*time.Second, max(settle, d))
	// Let the lag sampler see the groups catch up before the verdict.
	for range 40 {
		if _, ok := topo.Recovery(obs.Lags(), firstNonZero(e.faultAt, l.Started), latest(e.faultTo, e.faultAt, l.Finished)); ok {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	obs.Stop()
	r := chaos.Check(ctx, sc.name, l, col, e.sb)
	chaos.CheckRouted(r, col, p.routeOf, e.gone)
	r.MaxRSS = obs.MaxRSS()
	if !e.faultAt.IsZero() {
		rec, ok := topo.Recovery(obs.Lags(), e.faultAt, latest(e.faultTo, e.faultAt))
		if ok {
			r.Recovery = rec
		} else {
			r.Recovery = -1
			r.Details = append(r.Details, "the consumer groups' lag never came back to zero after the fault")
		}
	}
	for _, f := range e.checks {
		f(r)
	}
	r.Details = append(r.Details, shopSplit(ctx, e.sb, l))
	judge(t, sc.name, e.log, r, l, settled, why, sc.costs == "wrong-final", "Redis losing the guard's last writes")
	return r
}

// shopSplit says how the Dangdang orders were spread over the two shops.
func shopSplit(ctx context.Context, sb chaos.Sandbox, l *chaos.Ledger) string {
	orders, err := sb.Orders(ctx)
	if err != nil {
		return "sandbox orders: " + err.Error()
	}
	by := map[string]int{}
	for _, o := range orders {
		by[o.Shop]++
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, by[k]))
	}
	return "dangdang orders per shop: " + strings.Join(parts, ", ")
}

func firstNonZero(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func latest(ts ...time.Time) time.Time {
	return slices.MaxFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
}
