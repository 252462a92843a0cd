package dashboards_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/epiwatch/epiwatch/dashboards"
	"github.com/epiwatch/epiwatch/dashboards/internal/fromrules"
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
	for _, d := range loadAll(t) {
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
	region := findDashboard(t, dashboards.RegionUID)
	v, ok := region.Variables["region"]
	if !ok || !strings.Contains(v, "FROM regions") {
		t.Errorf("region dashboard: variable region = %q, want a query on the regions view", v)
	}
}

// dash is the part of a dashboard's JSON the tests read.
type dash struct {
	File      string
	UID       string
	Panels    []panel
	Variables map[string]string // name → query
}

type panel struct {
	ID          float64
	Type        string
	Title       string
	Description string
	Targets     []target
	// Fields are the field names the panel's configuration refers to, each
	// with where (for messages): override matchers, organize keys, map layer
	// fields, fillBelowTo, data links, stat field regexps.
	Fields map[string]string
	// DisplayNames are names the panel gives fields (displayName overrides):
	// a table's sortBy refers to one of these or to a field name.
	DisplayNames map[string]bool
	SortBy       []string
}

type target struct {
	RefID          string
	DatasourceUID  string
	DatasourceType string
	RawSQL         string
	Format         float64
	Expr           string
}

func loadAll(t *testing.T) []dash {
	t.Helper()
	var out []dash
	for _, d := range dashboards.All(plan(t)) {
		raw, err := os.ReadFile(filepath.Join("json", d.File))
		if err != nil {
			t.Fatalf("%v; %s", err, regenerate)
		}
		out = append(out, parseDashboard(t, d.File, raw))
	}
	return out
}

func findDashboard(t *testing.T, uid string) dash {
	t.Helper()
	for _, d := range loadAll(t) {
		if d.UID == uid {
			return d
		}
	}
	t.Fatalf("no dashboard with uid %s", uid)
	return dash{}
}

func parseDashboard(t *testing.T, file string, raw []byte) dash {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	d := dash{File: file, Variables: map[string]string{}}
	d.UID, _ = m["uid"].(string)
	if tmpl, ok := m["templating"].(map[string]any); ok {
		for _, v := range list(tmpl["list"]) {
			vm := v.(map[string]any)
			q, _ := vm["query"].(string)
			d.Variables[vm["name"].(string)] = q
		}
	}
	var walk func(ps []any)
	walk = func(ps []any) {
		for _, raw := range ps {
			pm := raw.(map[string]any)
			d.Panels = append(d.Panels, parsePanel(pm))
			walk(list(pm["panels"]))
		}
	}
	walk(list(m["panels"]))
	return d
}

var statFieldsRe = regexp.MustCompile(`^/\^\((.*)\)\$/$`)
var dataFieldRe = regexp.MustCompile(`\$\{__data\.fields\.([A-Za-z0-9_]+)\}`)

func parsePanel(pm map[string]any) panel {
	p := panel{Fields: map[string]string{}, DisplayNames: map[string]bool{}}
	p.ID, _ = pm["id"].(float64)
	p.Type, _ = pm["type"].(string)
	p.Title, _ = pm["title"].(string)
	p.Description, _ = pm["description"].(string)
	for _, raw := range list(pm["targets"]) {
		tm := raw.(map[string]any)
		var tg target
		tg.RefID, _ = tm["refId"].(string)
		tg.RawSQL, _ = tm["rawSql"].(string)
		tg.Expr, _ = tm["expr"].(string)
		tg.Format, _ = tm["format"].(float64)
		if ds, ok := tm["datasource"].(map[string]any); ok {
			tg.DatasourceUID, _ = ds["uid"].(string)
			tg.DatasourceType, _ = ds["type"].(string)
		}
		p.Targets = append(p.Targets, tg)
	}
	fc, _ := pm["fieldConfig"].(map[string]any)
	for _, raw := range list(fc["overrides"]) {
		om := raw.(map[string]any)
		matcher, _ := om["matcher"].(map[string]any)
		if matcher["id"] == "byName" {
			name, _ := matcher["options"].(string)
			p.Fields[name] = "override matcher"
		}
		for _, pr := range list(om["properties"]) {
			prm := pr.(map[string]any)
			switch prm["id"] {
			case "displayName":
				p.DisplayNames[prm["value"].(string)] = true
			case "custom.fillBelowTo":
				p.Fields[prm["value"].(string)] = "fillBelowTo"
			case "links":
				for _, l := range list(prm["value"]) {
					url, _ := l.(map[string]any)["url"].(string)
					for _, m := range dataFieldRe.FindAllStringSubmatch(url, -1) {
						p.Fields[m[1]] = "data link"
					}
				}
			}
		}
	}
	for _, raw := range list(pm["transformations"]) {
		tm := raw.(map[string]any)
		if tm["id"] != "organize" {
			continue
		}
		opts, _ := tm["options"].(map[string]any)
		for _, key := range []string{"indexByName", "renameByName", "excludeByName"} {
			km, _ := opts[key].(map[string]any)
			for name := range km {
				p.Fields[name] = "organize " + key
			}
		}
	}
	opts, _ := pm["options"].(map[string]any)
	for _, raw := range list(opts["sortBy"]) {
		if name, ok := raw.(map[string]any)["displayName"].(string); ok {
			p.SortBy = append(p.SortBy, name)
		}
	}
	if ro, ok := opts["reduceOptions"].(map[string]any); ok {
		if f, _ := ro["fields"].(string); f != "" {
			if m := statFieldsRe.FindStringSubmatch(f); m != nil {
				for _, name := range strings.Split(m[1], "|") {
					p.Fields[name] = "reduceOptions.fields"
				}
			}
		}
	}
	for _, raw := range list(opts["layers"]) {
		lm := raw.(map[string]any)
		if loc, ok := lm["location"].(map[string]any); ok {
			for _, k := range []string{"latitude", "longitude"} {
				if name, _ := loc[k].(string); name != "" {
					p.Fields[name] = "map location " + k
				}
			}
		}
		cfg, _ := lm["config"].(map[string]any)
		style, _ := cfg["style"].(map[string]any)
		for _, k := range []string{"color", "size", "text"} {
			if s, ok := style[k].(map[string]any); ok {
				if name, _ := s["field"].(string); name != "" {
					p.Fields[name] = "map style " + k
				}
			}
		}
	}
	return p
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestTableSortByNamesAColumn: a table's initial sort names a displayed
// column, or Grafana silently ignores it.
func TestTableSortByNamesAColumn(t *testing.T) {
	for _, d := range loadAll(t) {
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

// sortedKeys returns the map's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
