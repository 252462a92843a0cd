package thresholds

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/schemas"
)

// head is the four lines every test file starts with, so bodies start at
// line 5.
const head = "id: x\nversion: \"1\"\ntitle: t\nsource: s\n"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"the issue's example", head + `clauses:
  - name: ok
    action: ease
    when:
      r: {lt: 1}
  - name: x
    when: {r: {gt: 2}}
    action: tighten
`, []string{`rules.yaml:12: clause "x": unknown action "tighten" (want strengthen, keep or ease)`}},
		{"empty file", "", []string{"rules.yaml: the file is empty; a rule file needs at least id, version, title, source and its rules"}},
		{"comments only", "# nothing\n", []string{"rules.yaml: the file is empty; a rule file needs at least id, version, title, source and its rules"}},
		{"bad YAML", "id: x\nversion: [\n", []string{"rules.yaml:2: invalid YAML: did not find expected node content"}},
		{"not a mapping", "- a\n- b\n", []string{"rules.yaml:1: a rule file must be a mapping (id: …, version: …), not a list"}},
		{"two documents", head + "clauses: []\n---\nid: y\n", []string{"rules.yaml:6: a second YAML document starts here; put one rule set in each file"}},
		{"aliases", "id: &x a\nversion: *x\n", []string{
			"rules.yaml:1: anchors and aliases (&name, *name) are not supported in rule files; write the value out",
			"rules.yaml:2: anchors and aliases (&name, *name) are not supported in rule files; write the value out",
		}},
		{"missing required keys", "id: x\nclauses:\n  - {name: a, action: ease, when: {r: {lt: 1}}}\n", []string{
			`rules.yaml:1: a rule file needs "version"`,
			`rules.yaml:1: a rule file needs "title"`,
			`rules.yaml:1: a rule file needs "source"`,
		}},
		{"unknown top-level key", head + "clauses:\n  - {name: a, action: ease, when: {r: {lt: 1}}}\nthreshold: 3\n", []string{
			`rules.yaml:7: unknown key "threshold" (want id, version, title, source, notes, shape, r, flags, clauses or otherwise)`,
		}},
		{"key of another shape", head + "scale: [a, b]\nclauses:\n  - {name: a, action: ease, when: {r: {lt: 1}}}\n", []string{
			`rules.yaml:5: key "scale" does not apply to shape clauses (it takes clauses or otherwise)`,
		}},
		{"unknown shape", head + "shape: matrix\n", []string{`rules.yaml:5: unknown shape "matrix" (want clauses, higher_of, gate_max or criteria)`}},
		{"duplicate key", head + "clauses:\n  - {name: a, action: ease, when: {r: {lt: 1}}}\nid: y\n", []string{`rules.yaml:7: duplicate key "id" (first at line 1)`}},
		{"bad id", "id: Plan A\nversion: \"1\"\ntitle: t\nsource: s\nclauses:\n  - {name: a, action: ease, when: {r: {lt: 1}}}\n", []string{
			`rules.yaml:1: id "Plan A" must be lower-case letters, digits, '.', '_' or '-' (at most 64)`,
		}},
		{"empty source", "id: x\nversion: \"1\"\ntitle: t\nsource: \"\"\nclauses:\n  - {name: a, action: ease, when: {r: {lt: 1}}}\n", []string{
			`rules.yaml:4: source is empty`,
		}},
		{"empty clause list", head + "clauses: []\n", []string{"rules.yaml:5: clauses: clauses is an empty list"}},
		{"clause problems", head + `clauses:
  - name: a
    action: ease
    when: {}
  - name: a
    action: keep
    when: {r: {gt: 5, lt: 3}}
  - name: c
    action: keep
    when: {r: {ge: 5, lt: 5}, R: {lt: 1}, q_x: {gte: 1}, z_y: {lt: '1'}, w_z: {lt: .nan}, v_w: {}, u_v: {lt: 1, le: 2}}
    extra: 1
  - action: ease
`, []string{
			`rules.yaml:8: clause "a": when is empty: name at least one metric (use otherwise for a catch-all)`,
			`rules.yaml:9: clause "a": another clause has the same name (line 6); names must be unique so users can tell which fired`,
			`rules.yaml:11: clause "a": no value satisfies 5 < r < 3`,
			`rules.yaml:14: clause "c": no value satisfies 5 ≤ r < 5`,
			`rules.yaml:14: clause "c": metric name "R" must be lower-case snake_case, e.g. r or bed_occupancy_pct`,
			`rules.yaml:14: clause "c": unknown operator "gte" for q_x (want gt, ge, lt or le)`,
			`rules.yaml:14: clause "c": z_y lt must be a number, not the text "1"`,
			`rules.yaml:14: clause "c": w_z lt must be a finite number, not ".nan"`,
			`rules.yaml:14: clause "c": v_w has no bound; give at least one of gt, ge, lt or le`,
			`rules.yaml:14: clause "c": u_v has two lower or two upper bounds; keep one of gt/ge and one of lt/le`,
			`rules.yaml:15: clause "c": unknown key "extra" in a clause (want name, action or when)`,
			`rules.yaml:16: clause 4: a clause needs "name"`,
			`rules.yaml:16: clause 4: a clause needs "when"`,
		}},
		{"r and flags", head + `r: {method: ratio, statistic: bounds}
flags: {stale: hold, stale_beds: freeze}
clauses:
  - {name: a, action: ease, when: {r: {lt: 1}}}
`, []string{
			`rules.yaml:5: r: statistic bounds needs method cori: the ratio R has no credible interval`,
			`rules.yaml:6: flags: unknown flag "stale" (want backlog_dump, stale_beds, missing_input, negative_correction, stale_feed, unknown_facility or over_capacity)`,
			`rules.yaml:6: flags: flag stale_beds: unknown effect "freeze" (want no_ease, hold or ignore)`,
		}},
		{"unknown r method", head + "r:\n  method: rt\n  stat: mean\nclauses:\n  - {name: a, action: ease, when: {r: {lt: 1}}}\n", []string{
			`rules.yaml:6: r: unknown method "rt" (want cori or ratio)`,
			`rules.yaml:7: r: unknown key "stat" in r (want method, statistic or nowcast)`,
		}},
		{"r nowcast", head + "r:\n  method: ratio\n  nowcast: true\nclauses:\n  - {name: a, action: ease, when: {r: {lt: 1}}}\n", []string{
			`rules.yaml:7: r: nowcast needs method cori: the nowcast R is Cori's posterior on the completed counts`,
		}},
		{"r nowcast not a bool", head + "r: {nowcast: sometimes}\nclauses:\n  - {name: a, action: ease, when: {r: {lt: 1}}}\n", []string{
			`rules.yaml:5: r: nowcast must be true or false, got "sometimes"`,
		}},
		{"otherwise", head + "clauses:\n  - {name: a, action: ease, when: {r: {lt: 1}}}\notherwise: {name: o, action: relax}\n", []string{
			`rules.yaml:7: otherwise: unknown action "relax" (want strengthen, keep or ease)`,
		}},
		{"cut-points", head + `shape: higher_of
scale: [low, medium, high]
select:
  - name: t
    metrics:
      cases_7d_per_100k:
        high: {ge: 20}
        medium: {ge: 10}
      positivity_7d_pct:
        medium: {ge: 10}
        high: {ge: 10}
      tests_7d_per_100k:
        low: {ge: 1}
        hi: {gt: 2}
        high: {lt: 5}
`, []string{
			`rules.yaml:12: table "t": metric "cases_7d_per_100k": level "medium" comes after "high"; list cut-points from the lowest level up`,
			`rules.yaml:15: table "t": metric "positivity_7d_pct": the cut-point of "high" must be above that of "medium"`,
			`rules.yaml:17: table "t": metric "tests_7d_per_100k": level "low" is at or below the lowest level this table can give (low); it needs no cut-point`,
			`rules.yaml:18: table "t": metric "tests_7d_per_100k": unknown level "hi" (want low, medium or high)`,
			`rules.yaml:19: table "t": metric "tests_7d_per_100k": a cut-point is where a level starts: give exactly one of ge or gt`,
		}},
		{"targets", head + `shape: higher_of
scale: [low, high]
targets: {low: 2, high: 1}
select:
  - name: t
    metrics:
      cases_7d_per_100k: {high: {ge: 1}}
`, []string{
			`rules.yaml:7: targets: the target of "high" (1) is below that of "low" (2): a worse level must not call for milder restrictions`,
		}},
		{"gate", head + `shape: gate_max
scale: [low, high]
gate: cases_7d_per_100k
metrics:
  positivity_7d_pct: {high: {gt: 5}}
`, []string{`rules.yaml:7: gate "cases_7d_per_100k" must be one of the metrics listed under metrics`}},
		{"tiers", head + `shape: criteria
scale: [open, closed]
tiers:
  - name: t
    need: 3
    action: ease
    criteria:
      - {name: c, when: {r: {lt: 1}}}
      - {name: c, when: {r: {lt: 2}}}
`, []string{
			`rules.yaml:1: a criteria rule set with a scale needs otherwise: {name: …, level: …} (the level when no tier is met)`,
			`rules.yaml:8: tier "t": a tier needs "level"`,
			`rules.yaml:10: tier "t": unknown key "action" in a tier (want name, need, criteria or level)`,
		}},
		{"criteria", head + `shape: criteria
tiers:
  - name: t
    need: 3
    action: ease
    criteria:
      - {name: c, when: {r: {lt: 1}}}
      - {name: c, when: {r: {lt: 2}}}
`, []string{
			`rules.yaml:8: tier "t": need 3 must be between 1 and the number of criteria (2)`,
			`rules.yaml:12: tier "t": criterion "c": another criterion has the same name (line 11); names must be unique so users can tell which fired`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := Parse("rules.yaml", []byte(tt.file))
			if err == nil {
				t.Fatalf("no error; parsed %+v", rs)
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(tt.want, "\n"))
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != "rules.yaml" {
				t.Errorf("errors.As(*ParseError) failed on %T", err)
			}
		})
	}
}

func TestParseWarnsAboutUnknownMetrics(t *testing.T) {
	rs, err := Parse("staff.yaml", []byte(head+`clauses:
  - name: staff shortage
    action: strengthen
    when:
      hospital_staff_absent_pct: {ge: 20}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := `staff.yaml:9: clause "staff shortage": metric "hospital_staff_absent_pct" is not one epiwatch computes; conditions on it decide keep unless the caller supplies it`
	if len(rs.Warnings) != 1 || rs.Warnings[0] != want {
		t.Errorf("warnings %q, want [%q]", rs.Warnings, want)
	}
	// The open metric set works from configuration alone.
	if got := Evaluate(rs, Inputs{"hospital_staff_absent_pct": 25}, nil); got.Action != Strengthen {
		t.Errorf("got %s, want strengthen", got.Action)
	}
	if got := Evaluate(rs, Inputs{}, nil); got.Action != Keep || got.Missing[0] != "hospital_staff_absent_pct" {
		t.Errorf("got %s missing %v, want keep missing hospital_staff_absent_pct", got.Action, got.Missing)
	}
}

func TestParseDefaults(t *testing.T) {
	rs, err := Parse("", []byte(head+"clauses:\n  - {name: a, action: ease, when: {r: {lt: 1}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rs.File != "rules.yaml" || rs.Shape != ShapeClauses || rs.RMethod != RCori || rs.RStatistic != RMean || rs.RNowcast {
		t.Errorf("defaults: file %q shape %s method %s statistic %s nowcast %v", rs.File, rs.Shape, rs.RMethod, rs.RStatistic, rs.RNowcast)
	}
	nc, err := Parse("", []byte(head+"r: {statistic: bounds, nowcast: true}\nclauses:\n  - {name: a, action: ease, when: {r: {lt: 1}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !nc.RNowcast || nc.RStatistic != RBounds {
		t.Errorf("r: {statistic: bounds, nowcast: true} parsed as nowcast %v statistic %s", nc.RNowcast, nc.RStatistic)
	}
	if got := Check(rs, 2, 50); got.Action != Keep || got.Clause != "no clause matched" {
		t.Errorf("default otherwise: got %s / %q", got.Action, got.Clause)
	}
	if rs.FlagEffect(schemas.FlagStaleBeds) != FlagNoEase {
		t.Errorf("default flag effect %s, want no_ease", rs.FlagEffect(schemas.FlagStaleBeds))
	}
}

// FuzzParse: the rule-file parser must never panic, and whatever it accepts
// must evaluate without panicking.
func FuzzParse(f *testing.F) {
	files, err := fs.Glob(shipped, "rulesets/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := shipped.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(head + "clauses:\n  - {name: a, action: tighten, when: {r: {gt: 1}}}\n"))
	f.Add([]byte("id: &a x\nversion: *a\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := Parse("fuzz.yaml", data)
		if err != nil {
			var pes ParseErrors
			if !errors.As(err, &pes) || len(pes) == 0 {
				t.Fatalf("error is not a non-empty ParseErrors: %T %v", err, err)
			}
			return
		}
		if rs.ID == "" || rs.Version == "" || rs.Source == "" {
			t.Fatalf("accepted a rule set without id, version or source: %+v", rs)
		}
		_ = rs.Metrics()
		for _, in := range []Inputs{nil, PointInputs(1.2, 75), {MetricRestrictionLevel: 2, MetricRMean: 0.5, MetricCases7dPer100k: 300}} {
			r := Evaluate(rs, in, KnownFlags())
			if r.Action.Severity() < 0 {
				t.Fatalf("invalid action %q", r.Action)
			}
		}
		_ = Table(rs, []float64{0.5, 1.2}, []float64{10, 95})
	})
}
