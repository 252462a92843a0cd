package thresholds

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/schemas"
)

// The grid of the plan's edges: every band edge of R and of occupancy, and a
// value on either side. The column order is the issue's, with 90 before
// 89.99 on purpose.
var (
	planR   = []float64{0.99, 1.0, 1.0001, 1.1, 1.15, 1.2, 1.3, 1.3001, 2}
	planOcc = []float64{0, 49.99, 50, 60, 70, 70.01, 80, 90, 89.99, 100}
)

func mustLoad(t testing.TB, id string) *RuleSet {
	t.Helper()
	rs, err := Load(id)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func letterAction(t *testing.T, l string) Action {
	t.Helper()
	switch l {
	case "S":
		return Strengthen
	case "K":
		return Keep
	case "E":
		return Ease
	}
	t.Fatalf("bad letter %q in expected table", l)
	return ""
}

// checkMatrix compares every cell with an expectation written out by hand.
func checkMatrix(t *testing.T, id string, want map[float64]string) {
	t.Helper()
	rs := mustLoad(t, id)
	for _, r := range planR {
		row := strings.Fields(want[r])
		if len(row) != len(planOcc) {
			t.Fatalf("%s: expected row for R=%v has %d cells, want %d", id, r, len(row), len(planOcc))
		}
		for j, occ := range planOcc {
			got := Check(rs, r, occ)
			if w := letterAction(t, row[j]); got.Action != w {
				t.Errorf("%s: R=%v occupancy=%v: got %s (%s), want %s", id, r, occ, got.Action, got.Reason, w)
			}
		}
	}
}

// TestLiteralPlanMatrix is Kazakhstan's plan, section 7 item 1, cell by cell,
// derived by hand from the text:
//
//	strengthen: R > 1.3 and 50 ≤ occ ≤ 70; or 1.15 ≤ R ≤ 1.3 and 70 ≤ occ ≤ 90; or occ ≥ 90
//	ease:       R ≤ 1 and occ ≤ 50
//	keep:       everything else
func TestLiteralPlanMatrix(t *testing.T) {
	checkMatrix(t, "kz-2020-plan", map[float64]string{
		//      occ: 0 49.99 50 60 70 70.01 80 90 89.99 100
		0.99:   "E   E     E  K  K  K     K  S  K     S",
		1.0:    "E   E     E  K  K  K     K  S  K     S",
		1.0001: "K   K     K  K  K  K     K  S  K     S",
		1.1:    "K   K     K  K  K  K     K  S  K     S",
		1.15:   "K   K     K  K  S  S     S  S  S     S",
		1.2:    "K   K     K  K  S  S     S  S  S     S",
		1.3:    "K   K     K  K  S  S     S  S  S     S",
		1.3001: "K   K     S  S  S  K     K  S  K     S",
		2:      "K   K     S  S  S  K     K  S  K     S",
	})
}

// TestMonotoneMatrix is kz-2020-monotone cell by cell: the plan's strengthen
// region closed upwards (R > 1.3 and occ ≥ 50; R ≥ 1.15 and occ ≥ 70; occ ≥
// 90), the plan's ease region unchanged.
func TestMonotoneMatrix(t *testing.T) {
	checkMatrix(t, "kz-2020-monotone", map[float64]string{
		//      occ: 0 49.99 50 60 70 70.01 80 90 89.99 100
		0.99:   "E   E     E  K  K  K     K  S  K     S",
		1.0:    "E   E     E  K  K  K     K  S  K     S",
		1.0001: "K   K     K  K  K  K     K  S  K     S",
		1.1:    "K   K     K  K  K  K     K  S  K     S",
		1.15:   "K   K     K  K  S  S     S  S  S     S",
		1.2:    "K   K     K  K  S  S     S  S  S     S",
		1.3:    "K   K     K  K  S  S     S  S  S     S",
		1.3001: "K   K     S  S  S  S     S  S  S     S",
		2:      "K   K     S  S  S  S     S  S  S     S",
	})
}

// TestPlanClauses checks which clause fires at the edges, since users see it.
func TestPlanClauses(t *testing.T) {
	tests := []struct {
		id      string
		r, occ  float64
		want    Action
		wantCls string
	}{
		{"kz-2020-plan", 2, 95, Strengthen, "plan 1c: occupancy ≥ 90 %"},
		{"kz-2020-plan", 1.2, 90, Strengthen, "plan 1c: occupancy ≥ 90 %"},
		{"kz-2020-plan", 1.3001, 50, Strengthen, "plan 1a: R > 1.3 and occupancy 50–70 %"},
		{"kz-2020-plan", 1.3001, 70, Strengthen, "plan 1a: R > 1.3 and occupancy 50–70 %"},
		{"kz-2020-plan", 1.3, 70, Strengthen, "plan 1b: R 1.15–1.3 and occupancy 70–90 %"},
		{"kz-2020-plan", 1.15, 89.99, Strengthen, "plan 1b: R 1.15–1.3 and occupancy 70–90 %"},
		{"kz-2020-plan", 1.0, 50, Ease, "plan 3: R ≤ 1 and occupancy ≤ 50 %"},
		{"kz-2020-plan", 1.3001, 80, Keep, "plan 2: no criterion met, keep"},
		{"kz-2020-plan", 1.1, 60, Keep, "plan 2: no criterion met, keep"},
		{"kz-2020-monotone", 1.3001, 80, Strengthen, "monotone 1a: R > 1.3 and occupancy ≥ 50 %"},
		{"kz-2020-monotone", 1.2, 80, Strengthen, "monotone 1b: R ≥ 1.15 and occupancy ≥ 70 %"},
	}
	for _, tt := range tests {
		got := Check(mustLoad(t, tt.id), tt.r, tt.occ)
		if got.Action != tt.want || got.Clause != tt.wantCls {
			t.Errorf("%s R=%v occ=%v: got %s / %q, want %s / %q", tt.id, tt.r, tt.occ, got.Action, got.Clause, tt.want, tt.wantCls)
		}
	}
}

// fineGrid is 0..max in steps plus every edge and its float neighbours.
func fineGrid(maxV, step float64, edges ...float64) []float64 {
	var g []float64
	for i := 0; float64(i)*step <= maxV; i++ {
		g = append(g, float64(i)*step)
	}
	for _, e := range edges {
		g = append(g, e, math.Nextafter(e, -1), math.Nextafter(e, 2*maxV), e-0.0001, e+0.0001)
	}
	slices.Sort(g)
	return slices.Compact(g)
}

var (
	fineR   = fineGrid(3, 0.01, 1, 1.15, 1.3)
	fineOcc = fineGrid(100, 0.5, 50, 70, 90)
)

// monotoneViolation returns the first pair of neighbouring cells where the
// worse one (higher R or higher occupancy) gets a milder action.
func monotoneViolation(rs *RuleSet) (string, bool) {
	m := Table(rs, fineR, fineOcc)
	for i := range m.R {
		for j := range m.Occupancy {
			here := m.Cells[i][j].Action.Severity()
			if i+1 < len(m.R) && m.Cells[i+1][j].Action.Severity() < here {
				return "R " + num(m.R[i]) + "→" + num(m.R[i+1]) + " at occupancy " + num(m.Occupancy[j]) + ": " +
					string(m.Cells[i][j].Action) + " → " + string(m.Cells[i+1][j].Action), true
			}
			if j+1 < len(m.Occupancy) && m.Cells[i][j+1].Action.Severity() < here {
				return "occupancy " + num(m.Occupancy[j]) + "→" + num(m.Occupancy[j+1]) + " at R " + num(m.R[i]) + ": " +
					string(m.Cells[i][j].Action) + " → " + string(m.Cells[i][j+1].Action), true
			}
		}
	}
	return "", false
}

// TestMonotoneProperty: on a fine grid containing every edge, a worse R or a
// worse occupancy never gives a milder action under kz-2020-monotone, which
// is the default rule set (TestDefaultIsMonotone).
// Checking neighbours suffices: the grid order is the product order.
func TestMonotoneProperty(t *testing.T) {
	if v, bad := monotoneViolation(mustLoad(t, "kz-2020-monotone")); bad {
		t.Errorf("kz-2020-monotone is not monotone: %s", v)
	}
}

// TestDefaultIsMonotone: whatever rule set is the default, it answers a worse
// situation never with a weaker action, on every cell of the plan's matrix
// and on the fine grid.
func TestDefaultIsMonotone(t *testing.T) {
	rs, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if v, bad := monotoneViolation(rs); bad {
		t.Errorf("the default rule set %s is not monotone: %s", rs.ID, v)
	}
	// The review's example: R 1.2 strengthens at 85 %, so R 2.0 must too.
	if a, b := Check(rs, 1.2, 85).Action, Check(rs, 2.0, 85).Action; a.Severity() > b.Severity() {
		t.Errorf("default %s: R 1.2 / 85 %% says %s but R 2.0 / 85 %% says %s", rs.ID, a, b)
	}
}

// TestLiteralPlanIsNotMonotone names the counter-examples.
func TestLiteralPlanIsNotMonotone(t *testing.T) {
	rs := mustLoad(t, "kz-2020-plan")
	if _, bad := monotoneViolation(rs); !bad {
		t.Fatal("expected the literal plan to violate monotonicity")
	}
	// R rises from 1.3 to 1.3001 at 80 %: strengthen becomes keep.
	if a, b := Check(rs, 1.3, 80).Action, Check(rs, 1.3001, 80).Action; a != Strengthen || b != Keep {
		t.Errorf("R 1.3→1.3001 at 80 %%: got %s → %s, want strengthen → keep", a, b)
	}
	// Occupancy rises from 60 to 80 at R = 2: strengthen becomes keep.
	if a, b := Check(rs, 2, 60).Action, Check(rs, 2, 80).Action; a != Strengthen || b != Keep {
		t.Errorf("occupancy 60→80 at R 2: got %s → %s, want strengthen → keep", a, b)
	}
}

// TestMonotoneIsMinimal: the monotone set agrees with the plan wherever the
// plan strengthens or eases, and each cell it changes is at least as bad as
// some cell the plan strengthens (upward closure, nothing more).
func TestMonotoneIsMinimal(t *testing.T) {
	plan := Table(mustLoad(t, "kz-2020-plan"), fineR, fineOcc)
	mono := Table(mustLoad(t, "kz-2020-monotone"), fineR, fineOcc)
	for i := range fineR {
		for j := range fineOcc {
			p, m := plan.Cells[i][j].Action, mono.Cells[i][j].Action
			if p != Keep && p != m {
				t.Fatalf("R %v occ %v: plan %s, monotone %s", fineR[i], fineOcc[j], p, m)
			}
			if p == m {
				continue
			}
			if p != Keep || m != Strengthen {
				t.Fatalf("R %v occ %v: plan %s, monotone %s: only keep→strengthen changes are expected", fineR[i], fineOcc[j], p, m)
			}
			dominated := false
			for a := 0; a <= i && !dominated; a++ {
				for b := 0; b <= j; b++ {
					if plan.Cells[a][b].Action == Strengthen {
						dominated = true
						break
					}
				}
			}
			if !dominated {
				t.Fatalf("R %v occ %v strengthens in the monotone set but no better cell strengthens in the plan", fineR[i], fineOcc[j])
			}
		}
	}
}

// TestBoundsMode: strengthen clauses read r_q025, the ease clause reads
// r_q975; a band clause fires when the lower bound lies in the band.
func TestBoundsMode(t *testing.T) {
	rs := mustLoad(t, "kz-2020-plan-bounds")
	tests := []struct {
		name              string
		mean, lo, hi, occ float64
		want              Action
		clause            string
	}{
		{"whole interval in band 1b", 1.2, 1.16, 1.25, 80, Strengthen, "plan 1b: R 1.15–1.3 and occupancy 70–90 %"},
		{"lower bound below 1.15", 1.2, 1.1, 1.3, 80, Keep, "plan 2: no criterion met, keep"},
		{"lower bound at 1.15 (inclusive)", 1.2, 1.15, 1.3, 80, Strengthen, "plan 1b: R 1.15–1.3 and occupancy 70–90 %"},
		{"lower bound above 1.3 at 60 %", 1.5, 1.31, 1.8, 60, Strengthen, "plan 1a: R > 1.3 and occupancy 50–70 %"},
		{"lower bound exactly 1.3 at 60 %", 1.5, 1.3, 1.8, 60, Keep, "plan 2: no criterion met, keep"},
		{"lower bound in band, upper above it", 1.5, 1.25, 1.8, 80, Strengthen, "plan 1b: R 1.15–1.3 and occupancy 70–90 %"},
		{"lower bound above band at 80 %", 1.6, 1.35, 1.9, 80, Keep, "plan 2: no criterion met, keep"},
		{"upper bound at 1", 0.9, 0.8, 1.0, 40, Ease, "plan 3: R ≤ 1 and occupancy ≤ 50 %"},
		{"upper bound just above 1", 0.9, 0.8, 1.01, 40, Keep, "plan 2: no criterion met, keep"},
		{"occupancy alone", math.NaN(), math.NaN(), math.NaN(), 95, Strengthen, "plan 1c: occupancy ≥ 90 %"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Inputs{MetricRMean: tt.mean, MetricRQ025: tt.lo, MetricRQ975: tt.hi, MetricBedOccupancyPct: tt.occ}
			got := Evaluate(rs, in, nil)
			if got.Action != tt.want || got.Clause != tt.clause {
				t.Errorf("got %s / %q (%s), want %s / %q", got.Action, got.Clause, got.Reason, tt.want, tt.clause)
			}
		})
	}
	// The same interval under the mean: the mean 0.9 eases, the bounds keep.
	in := Inputs{MetricRMean: 0.9, MetricRQ025: 0.8, MetricRQ975: 1.01, MetricBedOccupancyPct: 40}
	if got := Evaluate(mustLoad(t, "kz-2020-plan"), in, nil); got.Action != Ease {
		t.Errorf("mean mode: got %s, want ease", got.Action)
	}
	// What was compared is reported by statistic.
	got := Evaluate(rs, Inputs{MetricRMean: 1.2, MetricRQ025: 1.16, MetricRQ975: 1.25, MetricBedOccupancyPct: 80}, nil)
	if _, ok := got.Compared[MetricRQ025]; !ok || got.Compared[MetricBedOccupancyPct] != 80 {
		t.Errorf("compared = %v, want r_q025 and bed_occupancy_pct", got.Compared)
	}
	// A point value (rules check) is an interval of zero width: bounds mode
	// then agrees with the literal plan in every cell.
	a, b := Table(mustLoad(t, "kz-2020-plan"), fineR, fineOcc), Table(rs, fineR, fineOcc)
	for i := range a.Cells {
		for j := range a.Cells[i] {
			if a.Cells[i][j].Action != b.Cells[i][j].Action {
				t.Fatalf("R %v occ %v: plan %s, bounds %s", fineR[i], fineOcc[j], a.Cells[i][j].Action, b.Cells[i][j].Action)
			}
		}
	}
	// Missing bound: keep, naming it, even though the mean is there.
	got = Evaluate(rs, Inputs{MetricRMean: 1.5, MetricBedOccupancyPct: 60}, nil)
	if got.Action != Keep || !slices.Equal(got.Missing, []string{MetricRQ025}) {
		t.Errorf("missing r_q025: got %s missing %v (%s)", got.Action, got.Missing, got.Reason)
	}
}

func TestMissingInputs(t *testing.T) {
	rs := mustLoad(t, "kz-2020-plan")
	tests := []struct {
		name        string
		in          Inputs
		want        Action
		wantMissing []string
	}{
		{"no R, occupancy settles it", Inputs{MetricBedOccupancyPct: 95}, Strengthen, nil},
		{"no R, occupancy 60", Inputs{MetricBedOccupancyPct: 60}, Keep, []string{MetricRMean}},
		{"no R, occupancy 40 (ease needs R)", Inputs{MetricBedOccupancyPct: 40}, Keep, []string{MetricRMean}},
		{"no R, occupancy 80", Inputs{MetricBedOccupancyPct: 80}, Keep, []string{MetricRMean}},
		{"R NaN", Inputs{MetricRMean: math.NaN(), MetricBedOccupancyPct: 60}, Keep, []string{MetricRMean}},
		{"R +Inf", Inputs{MetricRMean: math.Inf(1), MetricBedOccupancyPct: 60}, Keep, []string{MetricRMean}},
		{"no occupancy", Inputs{MetricRMean: 2}, Keep, []string{MetricBedOccupancyPct}},
		{"occupancy NaN", Inputs{MetricRMean: 0.5, MetricBedOccupancyPct: math.NaN()}, Keep, []string{MetricBedOccupancyPct}},
		{"nothing", Inputs{}, Keep, []string{MetricBedOccupancyPct}},
		{"nil inputs", nil, Keep, []string{MetricBedOccupancyPct}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(rs, tt.in, nil)
			if got.Action != tt.want || !slices.Equal(got.Missing, tt.wantMissing) {
				t.Fatalf("got %s missing %v (%s), want %s missing %v", got.Action, got.Missing, got.Reason, tt.want, tt.wantMissing)
			}
			if tt.wantMissing != nil {
				if got.Clause != ClauseMissingInput || !strings.Contains(got.Reason, tt.wantMissing[0]) {
					t.Errorf("clause %q, reason %q: want %q naming %s", got.Clause, got.Reason, ClauseMissingInput, tt.wantMissing[0])
				}
			}
		})
	}
	if got := Evaluate(nil, Inputs{}, nil); got.Action != Keep {
		t.Errorf("nil rule set: got %s, want keep", got.Action)
	}
}

func TestFlags(t *testing.T) {
	plan := mustLoad(t, "kz-2020-plan")
	custom, err := Parse("flags.yaml", []byte(`
id: flag-test
version: "1"
title: flags
source: test
flags:
  stale_beds: hold
  backlog_dump: ignore
clauses:
  - name: strengthen above 1.3
    action: strengthen
    when: {r: {gt: 1.3}}
  - name: ease below 1
    action: ease
    when: {r: {lt: 1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	easeIn := PointInputs(0.9, 40)
	strengthenIn := PointInputs(2, 95)
	tests := []struct {
		name   string
		rs     *RuleSet
		in     Inputs
		flags  []string
		want   Action
		heldBy []string
	}{
		{"no flag eases", plan, easeIn, nil, Ease, nil},
		{"stale beds hold an ease", plan, easeIn, []string{schemas.FlagStaleBeds}, Keep, []string{schemas.FlagStaleBeds}},
		{"backlog holds an ease", plan, easeIn, []string{schemas.FlagBacklogDump}, Keep, []string{schemas.FlagBacklogDump}},
		{"negative correction holds an ease", plan, easeIn, []string{schemas.FlagNegativeCorrection}, Keep, []string{schemas.FlagNegativeCorrection}},
		{"missing input holds an ease", plan, easeIn, []string{schemas.FlagMissingInput}, Keep, []string{schemas.FlagMissingInput}},
		{"flags never stop a strengthen by default", plan, strengthenIn, KnownFlags(), Strengthen, nil},
		{"unknown flag defaults to no_ease", plan, easeIn, []string{"operator_doubt"}, Keep, []string{"operator_doubt"}},
		{"duplicates count once", plan, easeIn, []string{schemas.FlagStaleBeds, schemas.FlagStaleBeds}, Keep, []string{schemas.FlagStaleBeds}},
		{"hold freezes a strengthen", custom, PointInputs(2, 0), []string{schemas.FlagStaleBeds}, Keep, []string{schemas.FlagStaleBeds}},
		{"ignore lets an ease through", custom, PointInputs(0.5, 0), []string{schemas.FlagBacklogDump}, Ease, nil},
		{"unmentioned flag is no_ease", custom, PointInputs(0.5, 0), []string{schemas.FlagMissingInput}, Keep, []string{schemas.FlagMissingInput}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(tt.rs, tt.in, tt.flags)
			if got.Action != tt.want || !slices.Equal(got.HeldBy, tt.heldBy) {
				t.Fatalf("got %s held by %v (%s), want %s held by %v", got.Action, got.HeldBy, got.Reason, tt.want, tt.heldBy)
			}
			if len(tt.heldBy) > 0 && (got.RuleAction == Keep || !strings.Contains(got.Reason, "held by data-quality flag "+tt.heldBy[0])) {
				t.Errorf("rule action %s, reason %q: want the rules' own action and the flag named", got.RuleAction, got.Reason)
			}
		})
	}
}
