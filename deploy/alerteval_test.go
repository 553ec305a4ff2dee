package deploy

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// The alert tests evaluate the rules on Prometheus's own PromQL engine over an in-memory
// storage, and follow an alert's state as rules.AlertingRule.Eval does. They do not import
// rules or promqltest: those reach config and remote-write auth, whose AWS, Azure, GCP and
// gRPC packages (about 400) cost make test ~53 s of a cold compile on 2 cores for nothing the
// tests use.

// loadSeries reads promqltest "load <step>" lines (a series description per line, e.g.
// `up{job="a"} 1 0x3 _ 1`: values one step apart from time 0, `_` for none) into series.
func loadSeries(t *testing.T, lines string, step time.Duration) []storage.Series {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	var out []storage.Series
	for line := range strings.Lines(lines) {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		lset, vals, err := p.ParseSeriesDesc(line)
		if err != nil {
			t.Fatalf("series %q: %v", line, err)
		}
		var samples []chunks.Sample
		for i, v := range vals {
			if v.Omitted {
				continue
			}
			if v.Histogram != nil {
				t.Fatalf("series %q: histograms are not loaded here", line)
			}
			samples = append(samples, fSample{t: int64(i) * step.Milliseconds(), f: v.Value})
		}
		out = append(out, storage.NewListSeries(lset, samples))
	}
	return out
}

// queryable serves series: each Select the ones its matchers match, sorted by labels.
func queryable(series []storage.Series) storage.Queryable {
	return storage.QueryableFunc(func(int64, int64) (storage.Querier, error) {
		return &storage.MockQuerier{SelectMockFunction: func(_ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
			set := &seriesSet{next: -1}
			for _, s := range series {
				if !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return !m.Matches(s.Labels().Get(m.Name)) }) {
					set.series = append(set.series, s)
				}
			}
			slices.SortFunc(set.series, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
			return set
		}}, nil
	})
}

// seriesSet iterates over a slice of series.
type seriesSet struct {
	series []storage.Series
	next   int
}

func (s *seriesSet) Next() bool                      { s.next++; return s.next < len(s.series) }
func (s *seriesSet) At() storage.Series              { return s.series[s.next] }
func (*seriesSet) Err() error                        { return nil }
func (*seriesSet) Warnings() annotations.Annotations { return nil }

// Alert states, as rules.AlertState.
const (
	inactive = iota
	pending
	firingState
)

type alertState struct {
	labels                    labels.Labels
	state                     int
	activeAt, keepFiringSince time.Time
}

// alertRule is one alerting rule of a rule file, evaluated as rules.AlertingRule.Eval does.
type alertRule struct {
	name, expr          string // expr as in the rule file (rulefmt.ParseFile checked it)
	hold, keepFiringFor time.Duration
	labels              labels.Labels
	active              map[uint64]*alertState
}

func newAlertRule(t *testing.T, r rulefmt.Rule) *alertRule {
	t.Helper()
	for k, v := range r.Labels {
		if strings.Contains(v, "{{") {
			t.Fatalf("alert %s: label %s is a template, which these tests do not expand", r.Alert, k)
		}
	}
	return &alertRule{name: r.Alert, expr: r.Expr, hold: time.Duration(r.For), keepFiringFor: time.Duration(r.KeepFiringFor),
		labels: labels.FromMap(r.Labels), active: map[uint64]*alertState{}}
}

// eval evaluates the rule at ts, as rules.AlertingRule.Eval (v0.316) does: each result sample
// is an alert (its labels without __name__, the rule's labels, alertname), pending from its
// first sight and firing once it has been active for the rule's `for`; an alert that is no
// longer in the result is dropped if pending and resolved if firing, unless keep_firing_for
// keeps it firing that long since it left the result.
func (r *alertRule) eval(t *testing.T, engine *promql.Engine, q storage.Queryable, ts time.Time) {
	t.Helper()
	query, err := engine.NewInstantQuery(context.Background(), q, nil, r.expr, ts)
	if err != nil {
		t.Fatal(err)
	}
	defer query.Close()
	res := query.Exec(context.Background())
	vec, err := res.Vector()
	if err != nil {
		t.Fatalf("%s at %s: %v", r.name, ts, err)
	}
	seen := map[uint64]bool{}
	for _, s := range vec {
		b := labels.NewBuilder(s.Metric)
		b.Del(model.MetricNameLabel)
		r.labels.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
		b.Set(labels.AlertName, r.name)
		lbs := b.Labels()
		h := lbs.Hash()
		if seen[h] {
			t.Fatalf("%s at %s: two samples make the alert %s", r.name, ts, lbs)
		}
		seen[h] = true
		if a, ok := r.active[h]; !ok || a.state == inactive {
			r.active[h] = &alertState{labels: lbs, state: pending, activeAt: ts}
		}
	}
	for h, a := range r.active {
		if !seen[h] {
			keep := false
			if a.state == firingState && r.keepFiringFor > 0 {
				if a.keepFiringSince.IsZero() {
					a.keepFiringSince = ts
				}
				keep = ts.Sub(a.keepFiringSince) < r.keepFiringFor
			}
			if a.state == pending {
				delete(r.active, h)
			}
			if !keep {
				a.state = inactive
				continue
			}
		} else {
			a.keepFiringSince = time.Time{}
		}
		if a.state == pending && ts.Sub(a.activeAt) >= r.hold {
			a.state = firingState
		}
	}
}

// firingAlerts lists the label sets of the rule's firing alerts.
func (r *alertRule) firingAlerts() []labels.Labels {
	var out []labels.Labels
	for _, a := range r.active {
		if a.state == firingState {
			out = append(out, a.labels)
		}
	}
	return out
}

// testEngine is a PromQL engine set up as promqltest.NewTestEngine sets up its own.
func testEngine(t *testing.T) *promql.Engine {
	engine := promql.NewEngine(promql.EngineOpts{
		MaxSamples: 1_000_000, Timeout: 100 * time.Second, LookbackDelta: 5 * time.Minute,
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		EnableAtModifier:         true, EnableNegativeOffset: true, EnableDelayedNameRemoval: true,
	})
	t.Cleanup(func() { _ = engine.Close() })
	return engine
}

// fSample is a float sample of a loaded series.
type fSample struct {
	t int64
	f float64
}

func (s fSample) T() int64                      { return s.t }
func (s fSample) ST() int64                     { return 0 }
func (s fSample) F() float64                    { return s.f }
func (s fSample) H() *histogram.Histogram       { return nil }
func (s fSample) FH() *histogram.FloatHistogram { return nil }
func (s fSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fSample) Copy() chunks.Sample           { return s }
