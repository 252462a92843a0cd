package thresholds

import (
	"math"
	"slices"
	"testing"

	"github.com/epiwatch/epiwatch/schemas"
)

// levelCase is one evaluation of a level-based rule set.
type levelCase struct {
	name    string
	in      Inputs
	level   string // expected scale level ("" when undetermined)
	action  Action
	missing []string
}

func runLevelCases(t *testing.T, id string, cases []levelCase) {
	t.Helper()
	rs := mustLoad(t, id)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(rs, tt.in, nil)
			if got.Level != tt.level || got.Action != tt.action || !slices.Equal(got.Missing, tt.missing) {
				t.Errorf("got level %q %s missing %v (%s / %s), want level %q %s missing %v",
					got.Level, got.Action, got.Missing, got.Clause, got.Reason, tt.level, tt.action, tt.missing)
			}
		})
	}
}

// cdc builds CDC inputs; the region is at restriction level 2, the target of
// "medium", so low eases, medium keeps and high strengthens.
func cdc(cases, admissions, beds float64) Inputs {
	return Inputs{
		MetricCases7dPer100k:         cases,
		MetricNewAdmissions7dPer100k: admissions,
		MetricInpatientBedsCovidPct:  beds,
		MetricRestrictionLevel:       2,
	}
}

// TestCDCCommunityLevels: every threshold of CDC's published table (25 Feb
// 2022) on both sides: below 200 cases, admissions <10 low, 10–19.9 medium,
// ≥20 high, beds <10 % low, 10–14.9 % medium, ≥15 % high; at 200 cases or
// more, admissions <10 medium, ≥10 high, beds <10 % medium, ≥10 % high; the
// level is the higher of the two.
func TestCDCCommunityLevels(t *testing.T) {
	runLevelCases(t, "us-cdc-2022-community-levels", []levelCase{
		{"<200: both low", cdc(150, 5, 5), "low", Ease, nil},
		{"<200: just below both medium thresholds", cdc(150, 9.9, 9.9), "low", Ease, nil},
		{"<200: admissions 10 → medium", cdc(150, 10, 5), "medium", Keep, nil},
		{"<200: beds 10 % → medium", cdc(150, 5, 10), "medium", Keep, nil},
		{"<200: both at the top of medium", cdc(150, 19.9, 14.9), "medium", Keep, nil},
		{"<200: admissions 20 → high", cdc(150, 20, 0), "high", Strengthen, nil},
		{"<200: beds 15 % → high", cdc(150, 0, 15), "high", Strengthen, nil},
		{"<200: higher of medium and high", cdc(150, 12, 16), "high", Strengthen, nil},
		{"199.9 cases is still <200", cdc(199.9, 12, 12), "medium", Keep, nil},
		{"≥200: 200 cases, both low values → medium (no low)", cdc(200, 5, 5), "medium", Keep, nil},
		{"≥200: just below 10", cdc(250, 9.9, 9.9), "medium", Keep, nil},
		{"≥200: admissions 10 → high", cdc(250, 10, 0), "high", Strengthen, nil},
		{"≥200: beds 10 % → high", cdc(250, 0, 10), "high", Strengthen, nil},
		{"cases missing: no table can be chosen", Inputs{MetricNewAdmissions7dPer100k: 5, MetricInpatientBedsCovidPct: 5, MetricRestrictionLevel: 2}, "", Keep, []string{MetricCases7dPer100k}},
		{"admissions missing but beds already high", cdc(150, math.NaN(), 16), "high", Strengthen, nil},
		{"admissions missing, beds low", cdc(150, math.NaN(), 5), "", Keep, []string{MetricNewAdmissions7dPer100k}},
		{"current level missing", Inputs{MetricCases7dPer100k: 150, MetricNewAdmissions7dPer100k: 5, MetricInpatientBedsCovidPct: 5}, "", Keep, []string{MetricRestrictionLevel}},
		{"current level not a whole number", Inputs{MetricCases7dPer100k: 150, MetricNewAdmissions7dPer100k: 5, MetricInpatientBedsCovidPct: 5, MetricRestrictionLevel: 1.5}, "", Keep, []string{MetricRestrictionLevel}},
	})
	// Relative to the current level: high calls for level 3.
	rs := mustLoad(t, "us-cdc-2022-community-levels")
	for cur, want := range map[float64]Action{1: Strengthen, 2: Strengthen, 3: Keep, 4: Ease} {
		in := cdc(150, 25, 0)
		in[MetricRestrictionLevel] = cur
		if got := Evaluate(rs, in, nil); got.Action != want || got.TargetLevel != 3 {
			t.Errorf("high at level %v: got %s target %d, want %s target 3", cur, got.Action, got.TargetLevel, want)
		}
	}
	got := Evaluate(rs, cdc(150, 25, 0), nil)
	if got.Clause != "high: new_admissions_7d_per_100k ≥ 20" {
		t.Errorf("clause %q", got.Clause)
	}
}

func can(cases, r, positivity, level float64) Inputs {
	return Inputs{MetricCases7dPer100k: cases, MetricRMean: r, MetricPositivity7dPct: positivity, MetricRestrictionLevel: level}
}

// TestCovidActNowRiskLevels: Covid Act Now's thresholds are the upper limit of
// each level (daily cases per 100k 1/10/25/75, here ×7 for 7-day totals;
// infection rate 0.9/1.1/1.4; positivity 3/10/20 %); overall is low when case
// density is low, else the highest.
func TestCovidActNowRiskLevels(t *testing.T) {
	runLevelCases(t, "us-can-2021-risk-levels", []levelCase{
		{"gate: 1.0 daily cases is low, whatever R and positivity", can(7, 1.6, 25, 1), "low", Keep, nil},
		{"gate low with R missing", can(7, math.NaN(), 25, 2), "low", Ease, nil},
		{"1.1 daily cases → medium", can(7.7, 0.8, 2, 2), "medium", Keep, nil},
		{"10 daily cases is still medium; R 1.1 medium; 3 % low", can(70, 1.1, 3, 2), "medium", Keep, nil},
		{"10.1 daily cases → high", can(70.7, 0.5, 1, 2), "high", Strengthen, nil},
		{"R 1.2 → high", can(14, 1.2, 1, 2), "high", Strengthen, nil},
		{"R 1.5 → very high", can(14, 1.5, 1, 2), "very high", Strengthen, nil},
		{"positivity 20 % is high", can(14, 0.5, 20, 3), "high", Keep, nil},
		{"positivity 20.1 % → very high", can(14, 0.5, 20.1, 3), "very high", Strengthen, nil},
		{"75 daily cases is very high", can(525, 0.5, 1, 4), "very high", Keep, nil},
		{"75.1 daily cases → severe, target 4", can(525.7, 0.5, 1, 4), "severe", Keep, nil},
		{"severe needs no R", can(600, math.NaN(), math.NaN(), 3), "severe", Strengthen, nil},
		{"medium cases, R missing", can(14, math.NaN(), 1, 2), "", Keep, []string{MetricRMean}},
		{"gate missing", Inputs{MetricRMean: 1, MetricPositivity7dPct: 1, MetricRestrictionLevel: 2}, "", Keep, []string{MetricCases7dPer100k}},
		{"low overall at level 3 eases", can(3, 1.0, 5, 3), "low", Ease, nil},
	})
}

// TestWHOPositivity: WHO (12 May 2020): positivity below 5 % for at least the
// last two weeks supports easing; 5 % itself does not.
func TestWHOPositivity(t *testing.T) {
	rs := mustLoad(t, "who-2020-positivity")
	tests := []struct {
		name      string
		this, prv float64
		flags     []string
		want      Action
		missing   []string
	}{
		{"both weeks below 5 %", 4.9, 4.9, nil, Ease, nil},
		{"this week at 5 %", 5, 4, nil, Keep, nil},
		{"last week at 5 %", 4, 5, nil, Keep, nil},
		{"last week unknown, this week below", 4, math.NaN(), nil, Keep, []string{MetricPositivityPrev7dPct}},
		{"last week unknown, this week above: not met anyway", 6, math.NaN(), nil, Keep, nil},
		{"met, but a backlog dump holds the ease", 1, 1, []string{schemas.FlagBacklogDump}, Keep, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(rs, Inputs{MetricPositivity7dPct: tt.this, MetricPositivityPrev7dPct: tt.prv}, tt.flags)
			if got.Action != tt.want || !slices.Equal(got.Missing, tt.missing) {
				t.Errorf("got %s missing %v (%s), want %s missing %v", got.Action, got.Missing, got.Reason, tt.want, tt.missing)
			}
		})
	}
}

func rpn(r, occ, tests7d, level float64) Inputs {
	return Inputs{MetricRRatio: r, MetricBedOccupancyPct: occ, MetricTests7dPer100k: tests7d, MetricRestrictionLevel: level}
}

// TestRospotrebnadzorStages: MR 3.1.0178-20 (8 May 2020): stage 1 needs
// Rt ≤ 1, ≥ 50 % beds free and ≥ 70 tests per 100 000 a day; stage 2 Rt ≤ 0.8
// and 90 tests; stage 3 Rt ≤ 0.5 and 100 tests. Levels: restrictions 4,
// stage 1 → 3, stage 2 → 2, stage 3 → 1.
func TestRospotrebnadzorStages(t *testing.T) {
	runLevelCases(t, "ru-rpn-2020-stages", []levelCase{
		{"stage 1 met from restrictions", rpn(1, 50, 490, 4), "stage 1", Ease, nil},
		{"testing 69.9 a day: not met", rpn(0.95, 45, 489.3, 4), "restrictions", Keep, nil},
		{"occupancy 50.1 %: not met", rpn(0.95, 50.1, 500, 4), "restrictions", Keep, nil},
		{"Rt 1.01: not met", rpn(1.01, 40, 500, 4), "restrictions", Keep, nil},
		{"stage 2 met at stage 1", rpn(0.8, 40, 630, 3), "stage 2", Ease, nil},
		{"Rt 0.7 but 80 tests: stage 1 only", rpn(0.7, 40, 560, 3), "stage 1", Keep, nil},
		{"stage 3 met at stage 2", rpn(0.5, 50, 700, 2), "stage 3", Ease, nil},
		{"at stage 3, Rt back above 1", rpn(1.1, 40, 800, 1), "restrictions", Strengthen, nil},
		{"Rt missing, stage 3 otherwise met", rpn(math.NaN(), 40, 700, 2), "", Keep, []string{MetricRRatio}},
		{"Rt missing, beds full: no stage can be met", rpn(math.NaN(), 60, 700, 3), "restrictions", Strengthen, nil},
	})
	// The ratio method reads r_ratio, never the Cori estimate.
	rs := mustLoad(t, "ru-rpn-2020-stages")
	got := Evaluate(rs, Inputs{MetricRMean: 0.4, MetricBedOccupancyPct: 40, MetricTests7dPer100k: 700, MetricRestrictionLevel: 2}, nil)
	if got.Action != Keep || !slices.Equal(got.Missing, []string{MetricRRatio}) {
		t.Errorf("got %s missing %v, want keep missing r_ratio", got.Action, got.Missing)
	}
}

// TestKOfN: a tier met when k of its n criteria hold, from configuration
// alone; unknown criteria count against certainty, not as met.
func TestKOfN(t *testing.T) {
	rs, err := Parse("two-of-three.yaml", []byte(head+`shape: criteria
tiers:
  - name: two of three warning signs
    action: strengthen
    need: 2
    criteria:
      - {name: R above 1.2, when: {r: {gt: 1.2}}}
      - {name: ICU above 80 %, when: {icu_occupancy_pct: {gt: 80}}}
      - {name: positivity above 10 %, when: {positivity_7d_pct: {gt: 10}}}
otherwise: {name: fewer than two signs, action: keep}
`))
	if err != nil {
		t.Fatal(err)
	}
	nan := math.NaN()
	tests := []struct {
		r, icu, pos float64
		want        Action
		clause      string
	}{
		{1.3, 85, 5, Strengthen, "two of three warning signs"},
		{1.3, 70, 12, Strengthen, "two of three warning signs"},
		{1.3, 85, 12, Strengthen, "two of three warning signs"},
		{1.3, 70, 5, Keep, "fewer than two signs"},
		{1.3, 85, nan, Strengthen, "two of three warning signs"},
		{1.3, nan, 5, Keep, ClauseMissingInput},
		{1.0, nan, 5, Keep, "fewer than two signs"},
	}
	for _, tt := range tests {
		got := Evaluate(rs, Inputs{MetricRMean: tt.r, MetricICUOccupancyPct: tt.icu, MetricPositivity7dPct: tt.pos}, nil)
		if got.Action != tt.want || got.Clause != tt.clause {
			t.Errorf("R %v ICU %v pos %v: got %s / %q (%s), want %s / %q", tt.r, tt.icu, tt.pos, got.Action, got.Clause, got.Reason, tt.want, tt.clause)
		}
	}
}

// TestBoundsOnLevels: in bounds mode a level-based rule set strengthens only
// if even R's lower bound gives a higher target, and eases only if even its
// upper bound gives a lower one.
func TestBoundsOnLevels(t *testing.T) {
	rs, err := Parse("can-bounds.yaml", []byte(head+`shape: gate_max
r: {method: cori, statistic: bounds}
scale: [low, medium, high]
gate: cases_7d_per_100k
metrics:
  cases_7d_per_100k: {medium: {gt: 7}}
  r: {medium: {gt: 0.9}, high: {gt: 1.1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	in := func(lo, hi, level float64) Inputs {
		return Inputs{MetricCases7dPer100k: 50, MetricRMean: (lo + hi) / 2, MetricRQ025: lo, MetricRQ975: hi, MetricRestrictionLevel: level}
	}
	tests := []struct {
		name string
		in   Inputs
		want Action
	}{
		{"whole interval high, at medium", in(1.15, 1.4, 2), Strengthen},
		{"interval spans medium and high, at medium", in(1.0, 1.4, 2), Keep},
		{"interval spans medium and high, at low", in(1.0, 1.4, 1), Strengthen},
		{"whole interval medium, at high", in(0.95, 1.05, 3), Ease},
		{"interval spans medium and high, at high", in(1.0, 1.2, 3), Keep},
	}
	for _, tt := range tests {
		if got := Evaluate(rs, tt.in, nil); got.Action != tt.want {
			t.Errorf("%s: got %s (%s / %s), want %s", tt.name, got.Action, got.Clause, got.Reason, tt.want)
		}
	}
}
