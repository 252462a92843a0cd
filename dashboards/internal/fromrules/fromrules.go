// Package fromrules reads, at generation time, what the dashboards draw
// from the pipeline's own homes: the decision rule's bands from the shipped
// rule set and the bed staleness from the beds package. It is the
// generator's side (dashboards/cmd/gen and the dashboards' tests); the
// dashboards package itself imports only schemas.
package fromrules

import (
	"fmt"

	"github.com/epiwatch/epiwatch/dashboards"
	"github.com/epiwatch/epiwatch/pipeline/science/beds"
	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
)

// RuleSetID is the rule set whose bands the dashboards colour by:
// Kazakhstan's 2020 plan read literally (Resolution No. 489, section 7,
// item 1), whose numbers the plan publishes and analysts quote.
const RuleSetID = "kz-2020-plan"

// Plan returns the dashboards' Plan: the R and ПЗК values RuleSetID compares
// with, and beds.DefaultMaxAge.
func Plan() (dashboards.Plan, error) {
	rs, err := thresholds.Load(RuleSetID)
	if err != nil {
		return dashboards.Plan{}, fmt.Errorf("dashboard bands: %w", err)
	}
	var p dashboards.Plan
	for _, b := range []struct {
		metric string
		into   *[3]float64
	}{{"r", &p.R}, {thresholds.MetricBedOccupancyPct, &p.OccupancyPct}} {
		cuts := rs.Cuts(b.metric)
		if len(cuts) != len(b.into) {
			return dashboards.Plan{}, fmt.Errorf("dashboard bands: rule set %s compares %s with %v; the dashboards colour by exactly %d values", RuleSetID, b.metric, cuts, len(b.into))
		}
		copy(b.into[:], cuts)
	}
	p.BedMaxAge = beds.DefaultMaxAge
	if err := p.Validate(); err != nil {
		return dashboards.Plan{}, err
	}
	return p, nil
}
