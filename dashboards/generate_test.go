package dashboards_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/epiwatch/epiwatch/dashboards"
	"github.com/epiwatch/epiwatch/dashboards/internal/fromrules"
	"github.com/epiwatch/epiwatch/internal/testkit/paneltest"
)

// plan is what dashboards/cmd/gen draws with: the bands of the shipped rule
// set and the beds package's staleness.
func plan(t testing.TB) dashboards.Plan {
	t.Helper()
	p, err := fromrules.Plan()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const regenerate = "regenerate with: go generate ./dashboards (or go run ./dashboards/cmd/gen from the repository root)"

// TestCommittedJSON keeps dashboards/json equal to what the builders produce.
func TestCommittedJSON(t *testing.T) {
	want := map[string]bool{}
	for _, d := range dashboards.All(plan(t)) {
		want[d.File] = true
		got, err := dashboards.Render(d)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join("json", d.File))
		if err != nil {
			t.Errorf("dashboards/json/%s: %v; %s", d.File, err, regenerate)
			continue
		}
		if !bytes.Equal(got, committed) {
			t.Errorf("dashboards/json/%s differs from what the builders produce (first difference at line %d); %s",
				d.File, firstDiffLine(got, committed), regenerate)
		}
	}
	files, _ := filepath.Glob(filepath.Join("json", "*.json"))
	for _, f := range files {
		if !want[filepath.Base(f)] {
			t.Errorf("dashboards/%s is not produced by any builder (Grafana would still load it): delete it or add its builder to dashboards.All", f)
		}
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := 0; i < len(la) && i < len(lb); i++ {
		if !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

// TestJSONRoundTrip reads the committed JSON back with the SDK (the custom
// ClickHouse query type registered), as a tool editing the dashboards would.
func TestJSONRoundTrip(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	cog.NewRuntime().RegisterDataqueryVariant(dashboards.ClickHouseVariantConfig())
	for _, d := range dashboards.All(plan(t)) {
		raw, err := os.ReadFile(filepath.Join("json", d.File))
		if err != nil {
			t.Fatal(err)
		}
		var back dashboard.Dashboard
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("%s: unmarshal with the SDK: %v", d.File, err)
		}
		built, err := d.Builder().Build()
		if err != nil {
			t.Fatal(err)
		}
		if back.Uid == nil || built.Uid == nil || *back.Uid != *built.Uid || len(back.Panels) != len(built.Panels) {
			t.Errorf("%s: read back %d panels, uid %v; built %d", d.File, len(back.Panels), back.Uid, len(built.Panels))
		}
		for _, p := range back.Panels {
			if p.Panel == nil {
				continue
			}
			for _, q := range p.Panel.Targets {
				if q.DataqueryType() == "unknown" {
					t.Errorf("%s panel %q: a query was not recognised by its type", d.File, ptrString(p.Panel.Title))
				}
			}
		}
	}
}

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestStructure checks what Grafana needs and what links rely on: unique
// panel ids, the agreed uids and data source uids, the region variable.
func TestStructure(t *testing.T) {
	uids := map[string]bool{}
	for _, d := range paneltest.Dashboards(t) {
		if uids[d.UID] {
			t.Errorf("%s: uid %s used twice", d.File, d.UID)
		}
		uids[d.UID] = true
		seen := map[float64]bool{}
		for _, p := range d.Panels {
			if seen[p.ID] {
				t.Errorf("%s: panel id %v used twice", d.File, p.ID)
			}
			seen[p.ID] = true
			if p.Type == "row" {
				continue
			}
			if p.Title == "" || p.Description == "" {
				t.Errorf("%s panel %v: every panel needs a title and a description (what it shows, where from)", d.File, p.ID)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s panel %q: no query", d.File, p.Title)
			}
			for _, q := range p.Targets {
				switch q.DatasourceUID {
				case dashboards.ClickHouseUID:
					if q.RawSQL == "" || q.DatasourceType != dashboards.ClickHousePluginID {
						t.Errorf("%s panel %q: ClickHouse query without SQL or with type %q", d.File, p.Title, q.DatasourceType)
					}
				case dashboards.PrometheusUID:
					if q.Expr == "" || q.DatasourceType != "prometheus" {
						t.Errorf("%s panel %q: Prometheus query without expr or with type %q", d.File, p.Title, q.DatasourceType)
					}
				default:
					t.Errorf("%s panel %q: query on data source %q, want %s or %s (the provisioned uids)", d.File, p.Title, q.DatasourceUID, dashboards.ClickHouseUID, dashboards.PrometheusUID)
				}
			}
		}
	}
	for _, want := range []string{dashboards.NationalUID, dashboards.RegionUID, dashboards.PipelineUID} {
		if !uids[want] {
			t.Errorf("no dashboard with uid %s", want)
		}
	}
	region := paneltest.FindDashboard(t, dashboards.RegionUID)
	v, ok := region.Variables["region"]
	if !ok || !strings.Contains(v, "FROM regions") {
		t.Errorf("region dashboard: variable region = %q, want a query on the regions view", v)
	}
}

// TestTableSortByNamesAColumn: a table's initial sort names a displayed
// column, or Grafana silently ignores it.
func TestTableSortByNamesAColumn(t *testing.T) {
	for _, d := range paneltest.Dashboards(t) {
		for _, p := range d.Panels {
			for _, s := range p.SortBy {
				if !p.DisplayNames[s] {
					if _, ok := p.Fields[s]; !ok {
						t.Errorf("%s panel %q: sortBy %q is neither a display name nor a field the panel configures", d.File, p.Title, s)
					}
				}
			}
		}
	}
}
