package dashboards_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/epiwatch/epiwatch/dashboards"
	"github.com/epiwatch/epiwatch/deploy/deploytest"
	"github.com/epiwatch/epiwatch/internal/testkit/paneltest"
	"github.com/epiwatch/epiwatch/pipeline/science/beds"
	"github.com/epiwatch/epiwatch/schemas"
)

// grafanaPromVars are the Grafana variables the Prometheus panels use, with
// the values promtool sees.
var grafanaPromVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m")

type promExpr struct{ where, expr string }

func prometheusExprs(t *testing.T) []promExpr {
	t.Helper()
	var out []promExpr
	for _, d := range paneltest.Dashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if tg.DatasourceUID != dashboards.PrometheusUID {
					continue
				}
				expr := grafanaPromVars.Replace(tg.Expr)
				where := fmt.Sprintf("%s panel %q query %s", d.File, p.Title, tg.RefID)
				if strings.Contains(expr, "$") {
					t.Errorf("%s: unknown Grafana variable in %q", where, tg.Expr)
				}
				out = append(out, promExpr{where, expr})
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no Prometheus panel query found")
	}
	return out
}

// TestPrometheusExpressionsParse writes every Prometheus panel expression
// into a recording-rule file and has promtool check it.
func TestPrometheusExpressionsParse(t *testing.T) {
	exprs := prometheusExprs(t)
	promtool := deploytest.Tool(t, "promtool")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, e := range exprs {
		rules = append(rules, rule{Record: fmt.Sprintf("epiwatch:dashboard_expr:%d", i), Expr: e.expr})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []map[string]any{{"name": "dashboard-expressions", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-expressions.rules.yml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := deploytest.Run(t, promtool, "check", "rules", file)
	if !strings.Contains(out, fmt.Sprintf("%d rules found", len(rules))) {
		t.Errorf("promtool checked an unexpected number of rules:\n%s", out)
	}
}

// TestMetricNames: every epiwatch_* metric a panel reads is named in
// schemas/metrics.go (deploy/deploytest checks that the pipeline's code
// declares each), so a renamed metric breaks a test, not a dashboard in
// production.
func TestMetricNames(t *testing.T) {
	named := map[string]bool{}
	for _, m := range schemas.MetricNames() {
		named[m] = true
	}
	for _, e := range prometheusExprs(t) {
		for _, m := range deploytest.MetricsIn(e.expr, named) {
			if !named[m] {
				t.Errorf("%s reads %s, which schemas/metrics.go does not name", e.where, m)
			}
		}
	}
}

// TestBedStaleHours keeps the committed beds table's "stale" mark equal to
// the processor's default (the generator reads it from the beds package; a
// stale JSON is caught here with a clearer message than the byte diff).
func TestBedStaleHours(t *testing.T) {
	want := fmt.Sprintf("> %g AS stale", beds.DefaultMaxAge.Hours())
	if !strings.Contains(regionBedsSQLFromJSON(t), want) {
		t.Errorf("the beds table's SQL does not mark snapshots older than beds.DefaultMaxAge (%s) stale (want %q); %s", beds.DefaultMaxAge, want, regenerate)
	}
}

func regionBedsSQLFromJSON(t *testing.T) string {
	for _, p := range paneltest.FindDashboard(t, dashboards.RegionUID).Panels {
		if strings.HasPrefix(p.Title, "Beds by facility") {
			return p.Targets[0].RawSQL
		}
	}
	t.Fatal("no beds-by-facility panel")
	return ""
}
