package paneltest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// Dashboard is the part of a committed dashboard's JSON the checks read.
type Dashboard struct {
	File      string // name under dashboards/json/
	UID       string
	Panels    []Panel           // every panel, rows' nested panels included
	Variables map[string]string // template variable name → its query ("" if none)
}

// Panel is one panel of a Dashboard.
type Panel struct {
	ID          float64
	Type        string
	Title       string
	Description string
	Targets     []Target
	// Fields are the field names the panel's configuration refers to, each
	// with where (for messages): override matchers, organize keys, map layer
	// fields, fillBelowTo, data links, stat field regexps. Check requires
	// the panel's ClickHouse queries to return every one: Grafana silently
	// ignores configuration naming a field that is not there.
	Fields map[string]string
	// DisplayNames are names the panel gives fields (displayName overrides):
	// a table's sortBy refers to one of these or to a field name.
	DisplayNames map[string]bool
	SortBy       []string
}

// Target is one query of a Panel.
type Target struct {
	RefID          string
	DatasourceUID  string
	DatasourceType string
	RawSQL         string  // ClickHouse
	Format         float64 // ClickHouse: 0 time series, 1 table
	Expr           string  // Prometheus
}

// JSONDir returns the absolute path of dashboards/json, the committed
// dashboards Grafana provisions. It is found from this source file's place
// in the module, not from the working directory, so a test of any package
// (dashboards, deploy/local/clustertest) reads the same files.
func JSONDir(t testing.TB) string {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("paneltest: cannot tell where its source file is")
	}
	root := filepath.Join(filepath.Dir(self), "..", "..", "..")
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(mod), "module github.com/epiwatch/epiwatch\n") {
		t.Fatalf("paneltest: %s is not the epiwatch module root (%v); the dashboards are read from the source tree, so do not build the test with -trimpath", root, err)
	}
	return filepath.Join(root, "dashboards", "json")
}

// Dashboards reads every committed dashboard (dashboards/json/*.json): what
// Grafana provisions, which the dashboards' TestCommittedJSON keeps equal to
// what the builders produce. Reading the files rather than building the
// dashboards here checks exactly what production runs, and needs no Plan.
func Dashboards(t testing.TB) []Dashboard {
	t.Helper()
	dir := JSONDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboard JSON in %s (%v); regenerate with: go generate ./dashboards", dir, err)
	}
	var out []Dashboard
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := parseDashboard(filepath.Base(f), raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// FindDashboard returns the committed dashboard with the given uid (the
// dashboards package's NationalUID, RegionUID, PipelineUID).
func FindDashboard(t testing.TB, uid string) Dashboard {
	t.Helper()
	for _, d := range Dashboards(t) {
		if d.UID == uid {
			return d
		}
	}
	t.Fatalf("no dashboard with uid %s", uid)
	return Dashboard{}
}

func parseDashboard(file string, raw []byte) (Dashboard, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return Dashboard{}, fmt.Errorf("%s: %w", file, err)
	}
	d := Dashboard{File: file, Variables: map[string]string{}}
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
	return d, nil
}

var (
	statFieldsRe = regexp.MustCompile(`^/\^\((.*)\)\$/$`)
	dataFieldRe  = regexp.MustCompile(`\$\{__data\.fields\.([A-Za-z0-9_]+)\}`)
)

func parsePanel(pm map[string]any) Panel {
	p := Panel{Fields: map[string]string{}, DisplayNames: map[string]bool{}}
	p.ID, _ = pm["id"].(float64)
	p.Type, _ = pm["type"].(string)
	p.Title, _ = pm["title"].(string)
	p.Description, _ = pm["description"].(string)
	for _, raw := range list(pm["targets"]) {
		tm := raw.(map[string]any)
		var tg Target
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
