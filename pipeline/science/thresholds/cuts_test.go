package thresholds

import (
	"slices"
	"testing"
)

// TestCuts reads the plan's bands from its rule file: R 1 / 1.15 / 1.3 and
// ПЗК 50 / 70 / 90 % (Resolution No. 489, section 7, item 1), the numbers
// the dashboards colour by.
func TestCuts(t *testing.T) {
	rs := mustLoad(t, "kz-2020-plan")
	if got := rs.Cuts("r"); !slices.Equal(got, []float64{1, 1.15, 1.3}) {
		t.Errorf("R cuts %v", got)
	}
	if got := rs.Cuts(MetricBedOccupancyPct); !slices.Equal(got, []float64{50, 70, 90}) {
		t.Errorf("occupancy cuts %v", got)
	}
	if got := rs.Cuts(MetricPositivity7dPct); got != nil {
		t.Errorf("positivity cuts %v, the plan has none", got)
	}
	for _, id := range []string{"ru-rpn-2020-stages", "us-cdc-2022-community-levels", "who-2020-positivity"} {
		rs := mustLoad(t, id)
		n := 0
		for _, m := range rs.Metrics() {
			n += len(rs.Cuts(m))
		}
		if n == 0 {
			t.Errorf("%s: no cuts on any metric it reads", id)
		}
	}
}
