package deploy

import (
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// alertsFile is the rule file under test; ALERTS_FILE points the tests at another version (to
// show what an older rule file missed).
func alertsFile() string {
	if f := os.Getenv("ALERTS_FILE"); f != "" {
		return f
	}
	return "observability/alerts.yaml"
}

// firing evaluates the alert rule named alert of the rule file every minute from 0 to at over
// the series (promqltest "load 1m" lines: values one minute apart from time 0), as Prometheus
// and `promtool test rules` do (alerteval_test.go), and returns the label sets of its firing
// alerts at at, each as "k=v,k=v" of the labels in keep.
func firing(t *testing.T, series string, at time.Duration, alert string, keep ...string) []string {
	t.Helper()
	groups, errs := rulefmt.ParseFile(alertsFile(), false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", alertsFile(), errs)
	}
	var rule *alertRule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == alert {
				rule = newAlertRule(t, r)
			}
		}
	}
	if rule == nil {
		t.Fatalf("%s has no alert %s", alertsFile(), alert)
	}
	q := queryable(loadSeries(t, series, time.Minute))
	engine := testEngine(t)
	for ts := time.Duration(0); ts <= at; ts += time.Minute {
		rule.eval(t, engine, q, time.Unix(0, 0).Add(ts))
	}
	var out []string
	for _, l := range rule.firingAlerts() {
		var kv []string
		for _, k := range keep {
			kv = append(kv, k+"="+l.Get(k))
		}
		out = append(out, strings.Join(kv, ","))
	}
	sort.Strings(out)
	return out
}

// Each case holds the series the services export (the broker-side group lag of kafkaio.Lag,
// the counters and gauges of the services, Prometheus's up) and which alerts must fire.
func TestAlertRules(t *testing.T) {
	tests := []struct {
		name   string
		alert  string
		series string
		at     time.Duration
		keep   []string
		want   []string // firing alerts, by the labels in keep; empty: none
	}{
		{
			name:  "a real lag growing in one group pages once for the group",
			alert: "OrderpipeConsumerLagGrowing", at: 35 * time.Minute, keep: []string{"group"},
			series: `
  orderpipe_consumer_group_lag_records{job="dispatcher",instance="a",group="dispatcher",topic="orders.status.v1",partition="0"} 900+20x40
  orderpipe_consumer_group_lag_records{job="dispatcher",instance="b",group="dispatcher",topic="orders.status.v1",partition="0"} 900+20x40
  orderpipe_consumer_group_lag_records{job="dispatcher",instance="c",group="dispatcher",topic="orders.status.v1",partition="0"} 900+20x40
  orderpipe_consumer_group_lag_records{job="normalizer",instance="d",group="normalizer",topic="callbacks.raw.v1",partition="0"} 0x40
  dispatcher_consumer_lag_records{job="dispatcher",instance="a",partition="0"} 900+20x40
  dispatcher_consumer_lag_records{job="dispatcher",instance="b",partition="0"} 900+20x40
  dispatcher_consumer_lag_records{job="dispatcher",instance="c",partition="0"} 900+20x40
`,
			want: []string{"group=dispatcher"},
		},
		{
			name:  "three replicas of a group 520 behind are not 1,560 behind",
			alert: "OrderpipeConsumerLagGrowing", at: 35 * time.Minute, keep: []string{"group", "job"},
			series: `
  orderpipe_consumer_group_lag_records{job="dispatcher",instance="a",group="dispatcher",topic="orders.status.v1",partition="0"} 500+1x40
  orderpipe_consumer_group_lag_records{job="dispatcher",instance="b",group="dispatcher",topic="orders.status.v1",partition="0"} 500+1x40
  orderpipe_consumer_group_lag_records{job="dispatcher",instance="c",group="dispatcher",topic="orders.status.v1",partition="0"} 500+1x40
  dispatcher_consumer_lag_records{job="dispatcher",instance="a",partition="0"} 500+1x40
  dispatcher_consumer_lag_records{job="dispatcher",instance="b",partition="0"} 500+1x40
  dispatcher_consumer_lag_records{job="dispatcher",instance="c",partition="0"} 500+1x40
`,
		},
		{
			name:  "a stuck consumer pages: committed offset flat while lag > 0",
			alert: "OrderpipeConsumerStuck", at: 40 * time.Minute, keep: []string{"group", "partition"},
			series: `
  orderpipe_consumer_group_lag_records{job="normalizer",instance="a",group="normalizer",topic="callbacks.raw.v1",partition="3"} 7x40
  orderpipe_consumer_group_committed_offset{job="normalizer",instance="a",group="normalizer",topic="callbacks.raw.v1",partition="3"} 1200x40
  orderpipe_consumer_group_lag_records{job="normalizer",instance="a",group="normalizer",topic="callbacks.raw.v1",partition="4"} 7x40
  orderpipe_consumer_group_committed_offset{job="normalizer",instance="a",group="normalizer",topic="callbacks.raw.v1",partition="4"} 1200+30x40
  orderpipe_consumer_group_lag_records{job="normalizer",instance="a",group="normalizer",topic="callbacks.raw.v1",partition="5"} 0x40
  orderpipe_consumer_group_committed_offset{job="normalizer",instance="a",group="normalizer",topic="callbacks.raw.v1",partition="5"} 900x40
  normalizer_consumer_lag_records{job="normalizer",instance="a",partition="3"} 7x40
`,
			want: []string{"group=normalizer,partition=3"},
		},
		{
			name:  "frozen lag figures are reported",
			alert: "OrderpipeConsumerLagUnknown", at: 20 * time.Minute, keep: []string{"job"},
			series: `
  orderpipe_consumer_group_lag_updated_seconds{job="normalizer",instance="a"} 0 60 120 180 240 300 300x14
  orderpipe_consumer_group_lag_updated_seconds{job="dispatcher",instance="b"} 0+60x20
`,
			want: []string{"job=normalizer"},
		},
		{
			name:  "an ingress shedding callbacks for body memory pages, as for busy",
			alert: "OrderpipeIngressRefusing", at: 15 * time.Minute, keep: []string{"platform"},
			series: `
  ingress_requests_total{job="ingress",instance="a",platform="eleme",outcome="ok"} 0+600x20
  ingress_requests_total{job="ingress",instance="a",platform="eleme",outcome="body_memory_full"} 0+120x20
  ingress_requests_total{job="ingress",instance="a",platform="dianwoda",outcome="ok"} 0+600x20
  ingress_requests_total{job="ingress",instance="a",platform="dianwoda",outcome="busy"} 0+120x20
  ingress_requests_total{job="ingress",instance="b",platform="dianwoda",outcome="ok"} 0+600x20
`,
			want: []string{"platform=dianwoda", "platform=eleme"},
		},
		{
			name:  "a crash loop pages",
			alert: "OrderpipeCrashLooping", at: 20 * time.Minute, keep: []string{"job", "instance"},
			series: `
  process_start_time_seconds{job="normalizer",instance="a"} 0 0 0 180 180 180 360 360 360 540 540 540 720 720 720 900 900 900 1080 1080 1080
  up{job="normalizer",instance="a"} 1 1 0 1 1 0 1 1 0 1 1 0 1 1 0 1 1 0 1 1 0
  process_start_time_seconds{job="normalizer",instance="b"} 0x20
  up{job="normalizer",instance="b"} 1x20
`,
			want: []string{"job=normalizer,instance=a"},
		},
		{
			name:  "a service that is down pages",
			alert: "OrderpipeServiceDown", at: 12 * time.Minute, keep: []string{"job"},
			series: `
  up{job="normalizer",instance="a"} 1 1 0x10
  up{job="normalizer",instance="b"} 1 1 0x10
  up{job="ingress",instance="c"} 1x12
  up{job="dispatcher",instance="d"} 1x12
`,
			want: []string{"job=normalizer"},
		},
		{
			name:  "a service without any target pages",
			alert: "OrderpipeServiceDown", at: 12 * time.Minute, keep: []string{"job"},
			series: `
  up{job="ingress",instance="c"} 1x12
  up{job="normalizer",instance="a"} 1x12
`,
			want: []string{"job=dispatcher"},
		},
		{
			name:  "a paused Dangdang shop pages once, whichever replica paused it",
			alert: "OrderpipeDangdangShopPaused", at: 10 * time.Minute, keep: []string{"shop"},
			series: `
  dispatcher_dangdang_shop_paused{job="dispatcher",instance="a",shop="s1"} 0 0 1x8
  dispatcher_dangdang_shop_paused{job="dispatcher",instance="b",shop="s1"} 0x10
  dispatcher_dangdang_shop_paused{job="dispatcher",instance="a",shop="s2"} 0x10
`,
			want: []string{"shop=s1"},
		},
		{
			name:  "raw DLQ growth: a counter's first dead letters count",
			alert: "OrderpipeRawDLQReceiving", at: 12 * time.Minute, keep: []string{"platform", "reason"},
			series: `
  normalizer_records_dead_lettered_total{job="normalizer",instance="a",platform="eleme",reason="decode"} _x9 1 1 1
  normalizer_records_dead_lettered_total{job="normalizer",instance="a",platform="dianwoda",reason="too_large"} 0+1x12
  normalizer_records_dead_lettered_total{job="normalizer",instance="a",platform="dianwoda",reason="validate"} 4x12
`,
			want: []string{"platform=dianwoda,reason=too_large", "platform=eleme,reason=decode"},
		},
		{
			name:  "status DLQ growth: a counter's first dead letters count",
			alert: "OrderpipeStatusDLQReceiving", at: 12 * time.Minute, keep: []string{"reason"},
			series: `
  dispatcher_dlq_total{job="dispatcher",instance="a",reason="dangdang_retries_exhausted"} _x10 2 2
`,
			want: []string{"reason=dangdang_retries_exhausted"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := firing(t, tt.series, tt.at, tt.alert, tt.keep...)
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("%s firing at %s: %q, want %q", tt.alert, tt.at, got, tt.want)
			}
		})
	}
}
