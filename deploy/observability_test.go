package deploy

import (
	"encoding/json"
	"log/slog"
	"os"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// Expressions returns every PromQL expression of the alert rules and the dashboard, by where it is.
func Expressions(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	groups, errs := rulefmt.ParseFile("observability/alerts.yaml", false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("alerts.yaml: %v", err)
	}
	if groups != nil {
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				out["alert "+r.Alert] = r.Expr
			}
		}
	}
	b, err := os.ReadFile("observability/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		for i, tg := range p.Targets {
			out["panel "+p.Title+" #"+string(rune('A'+i))] = tg.Expr
		}
	}
	return out
}

// Every alert rule loads as Prometheus loads it (rulefmt validates the expressions and
// templates), and every dashboard query is valid PromQL.
func TestAlertsAndDashboardAreValidPromQL(t *testing.T) {
	exprs := Expressions(t)
	if len(exprs) < 10 {
		t.Fatalf("only %d expressions found", len(exprs))
	}
	p := parser.NewParser(parser.Options{})
	for where, e := range exprs {
		if _, err := p.ParseExpr(e); err != nil {
			t.Errorf("%s: %v\n%s", where, err, e)
		}
	}
}
