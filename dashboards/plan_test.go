package dashboards_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/dashboards"
)

// TestPlanDrawn: the bands and the staleness reach the JSON from the Plan
// alone, so a change of the rule file (and a regeneration) is all it takes.
func TestPlanDrawn(t *testing.T) {
	p := plan(t)
	if p.R != [3]float64{1, 1.15, 1.3} || p.OccupancyPct != [3]float64{50, 70, 90} || p.BedMaxAge != 48*time.Hour {
		t.Fatalf("plan %+v: the shipped kz-2020-plan bands are R 1 / 1.15 / 1.3, ПЗК 50 / 70 / 90 %%, beds stale after 48 h", p)
	}
	other := p
	other.R[2], other.OccupancyPct[2], other.BedMaxAge = 1.45, 95, 36*time.Hour
	for i, d := range dashboards.All(other) {
		got, err := dashboards.Render(d)
		if err != nil {
			t.Fatal(err)
		}
		base, err := dashboards.Render(dashboards.All(p)[i])
		if err != nil {
			t.Fatal(err)
		}
		if n, m := bytes.Count(got, []byte("1.45")), bytes.Count(base, []byte("1.45")); n <= m {
			t.Errorf("%s: R's strengthen bound not drawn from the plan", d.File)
		}
		if d.File == "region.json" && !bytes.Contains(got, []byte("> 36 AS stale")) {
			t.Errorf("%s: bed staleness not drawn from the plan", d.File)
		}
		if d.File == "pipeline.json" && !bytes.Contains(got, []byte("0.95")) {
			t.Errorf("%s: the occupancy ratio bands not drawn from the plan", d.File)
		}
	}
}

func TestPlanValidate(t *testing.T) {
	ok := plan(t)
	for name, p := range map[string]dashboards.Plan{
		"R not ascending":        {R: [3]float64{1, 1.3, 1.15}, OccupancyPct: ok.OccupancyPct, BedMaxAge: ok.BedMaxAge},
		"occupancy repeated":     {R: ok.R, OccupancyPct: [3]float64{50, 50, 90}, BedMaxAge: ok.BedMaxAge},
		"no staleness":           {R: ok.R, OccupancyPct: ok.OccupancyPct},
		"staleness not in hours": {R: ok.R, OccupancyPct: ok.OccupancyPct, BedMaxAge: 90 * time.Minute},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}
