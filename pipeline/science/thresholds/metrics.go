package thresholds

import (
	"math"
	"slices"
)

// Inputs are the named metrics of one region on one day. The set is open:
// a rule file may name any metric, and a rule set works from configuration
// alone as long as the caller supplies the metrics it names. The names below
// are the ones epiwatch's processor computes; they match the JSON field names
// of schemas.Indicator. A metric that is absent, NaN or infinite is missing,
// and a rule that needs it decides keep and says which metric was missing.
type Inputs map[string]float64

// Metric names epiwatch computes.
const (
	// MetricRMean is the posterior mean of R (Cori et al. 2013, EpiEstim).
	MetricRMean = "r_mean"
	// MetricRQ025 is the lower end of R's 95 % credible interval.
	MetricRQ025 = "r_q025"
	// MetricRQ975 is the upper end of R's 95 % credible interval.
	MetricRQ975 = "r_q975"
	// MetricRRatio is the officials' ratio R: cases in the last 4 days over
	// cases in the 4 days before.
	MetricRRatio = "r_ratio"
	// MetricBedOccupancyPct is ПЗК: the percentage of the infectious-disease
	// bed fund for COVID-19 that is occupied.
	MetricBedOccupancyPct = "bed_occupancy_pct"
	// MetricICUOccupancyPct is the percentage of ICU beds occupied.
	MetricICUOccupancyPct = "icu_occupancy_pct"
	// MetricPositivity7dPct is the percentage of tests positive over the last
	// 7 days.
	MetricPositivity7dPct = "positivity_7d_pct"
	// MetricPositivityPrev7dPct is the 7-day positivity of the week before
	// (days 8–14 back), so that "two weeks below 5 %" can be checked.
	MetricPositivityPrev7dPct = "positivity_prev_7d_pct"
	// MetricCases7dPer100k is new confirmed cases over 7 days per 100 000.
	MetricCases7dPer100k = "cases_7d_per_100k"
	// MetricTests7dPer100k is tests over 7 days per 100 000 (a daily rate of
	// x per 100 000 is 7x here).
	MetricTests7dPer100k = "tests_7d_per_100k"
	// MetricNewAdmissions7dPer100k is new COVID-19 hospital admissions over 7
	// days per 100 000.
	MetricNewAdmissions7dPer100k = "new_admissions_7d_per_100k"
	// MetricInpatientBedsCovidPct is the percentage of all staffed inpatient
	// beds occupied by COVID-19 patients (CDC's denominator, unlike ПЗК).
	MetricInpatientBedsCovidPct = "inpatient_beds_covid_pct"
	// MetricRestrictionLevel is the region's current restriction level
	// (1 = mildest). Level-based rule sets compare their target with it.
	MetricRestrictionLevel = "restriction_level"
)

// MetricR is the pseudo-metric "r" of rule files: it reads the R the rule set
// chose (r.method, r.statistic), so one clause works for every R variant.
const MetricR = "r"

// MetricInfo describes one metric name epiwatch computes.
type MetricInfo struct {
	Name        string `json:"name"`        // as written in rule files and Inputs
	Description string `json:"description"` // what it measures, with its unit
}

// KnownMetrics lists the metrics epiwatch computes. Rule files may name
// others; the parser accepts them with a warning, because a metric nobody
// supplies makes every decision that needs it a keep.
func KnownMetrics() []MetricInfo {
	return []MetricInfo{
		{MetricR, "R as selected by the rule set's r.method and r.statistic"},
		{MetricRMean, "posterior mean of R (Cori et al. 2013)"},
		{MetricRQ025, "lower end of R's 95 % credible interval"},
		{MetricRQ975, "upper end of R's 95 % credible interval"},
		{MetricRRatio, "ratio R: cases in the last 4 days over the 4 days before"},
		{MetricBedOccupancyPct, "infectious-bed occupancy, percent (ПЗК)"},
		{MetricICUOccupancyPct, "ICU bed occupancy, percent"},
		{MetricPositivity7dPct, "test positivity over the last 7 days, percent"},
		{MetricPositivityPrev7dPct, "test positivity over days 8–14 back, percent"},
		{MetricCases7dPer100k, "new cases over 7 days per 100 000"},
		{MetricTests7dPer100k, "tests over 7 days per 100 000"},
		{MetricNewAdmissions7dPer100k, "new COVID-19 admissions over 7 days per 100 000"},
		{MetricInpatientBedsCovidPct, "staffed inpatient beds occupied by COVID-19 patients, percent"},
		{MetricRestrictionLevel, "the region's current restriction level, 1 = mildest"},
	}
}

func isKnownMetric(name string) bool {
	return slices.ContainsFunc(KnownMetrics(), func(m MetricInfo) bool { return m.Name == name })
}

// get returns the metric's value and whether it is usable (present and
// finite).
func (in Inputs) get(name string) (float64, bool) {
	v, ok := in[name]
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// PointInputs builds the inputs of `epiwatch rules check`: one value of R
// (used for every R statistic, so a bounds rule set reads it as an interval
// of zero width) and one bed occupancy in percent.
func PointInputs(r, occupancyPct float64) Inputs {
	return Inputs{
		MetricRMean:           r,
		MetricRQ025:           r,
		MetricRQ975:           r,
		MetricRRatio:          r,
		MetricBedOccupancyPct: occupancyPct,
	}
}
