package decide

import (
	"reflect"
	"slices"
	"strings"

	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
	"github.com/epiwatch/epiwatch/schemas"
)

// metricField is one numeric field of schemas.Indicator, named by its JSON
// name, which is the metric name rule sets use.
type metricField struct {
	name  string
	index int
	ptr   bool // *float64 (nil: not available) rather than int
}

// indicatorMetrics lists the numeric fields of schemas.Indicator by
// reflection, so a field added to the contract becomes a metric without a
// change here. Version (a stream sequence) and Date are not metrics.
func indicatorMetrics() []metricField {
	var out []metricField
	t := reflect.TypeFor[schemas.Indicator]()
	floatPtr := reflect.TypeFor[*float64]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		switch {
		case f.Type == floatPtr:
			out = append(out, metricField{name: name, index: i, ptr: true})
		case f.Type.Kind() == reflect.Int:
			out = append(out, metricField{name: name, index: i})
		}
	}
	return out
}

// inputsOf builds the rule set's inputs for one day: every numeric field of
// the day's indicator under its JSON name (nil fields are absent, never 0),
// the week-before positivity from the record 7 days earlier, and the
// region's current restriction level. The metrics the processor marks
// uncertain (R from few cases, positivity from few tests) are absent too,
// unless keep names them: decisions treat them as unknown.
func inputsOf(fields []metricField, day *schemas.Indicator, weekBefore *schemas.Indicator, level int, keep ...string) thresholds.Inputs {
	in := thresholds.Inputs{thresholds.MetricRestrictionLevel: float64(level)}
	if day != nil {
		v := reflect.ValueOf(day).Elem()
		for _, f := range fields {
			if slices.Contains(day.Uncertain, f.name) && !slices.Contains(keep, f.name) {
				continue
			}
			fv := v.Field(f.index)
			if f.ptr {
				if !fv.IsNil() {
					in[f.name] = fv.Elem().Float()
				}
				continue
			}
			in[f.name] = float64(fv.Int())
		}
	}
	// positivity_prev_7d_pct: the 7-day window ending 7 days earlier covers
	// days 8–14 back (counting the day itself as day 1), which is what
	// thresholds.MetricPositivityPrev7dPct means.
	if weekBefore != nil && weekBefore.Positivity7dPct != nil && !slices.Contains(weekBefore.Uncertain, "positivity_7d_pct") {
		in[thresholds.MetricPositivityPrev7dPct] = *weekBefore.Positivity7dPct
	}
	return in
}

// usesNowcast says whether a decision on day reads R from its nowcast: the
// rule set decides provisional days on the nowcast R (r.nowcast), the day
// is provisional, and its nowcast R is there and rests on enough cases
// (the processor marks it uncertain otherwise, and the day then waits to
// be complete like any other). Whether the day is decided before it is
// complete is Decider.nowcastClear's question.
func usesNowcast(rs *thresholds.RuleSet, day *schemas.Indicator) bool {
	return rs.RNowcast && day != nil && day.Provisional && day.RNowcastMean != nil && day.RNowcastQ025 != nil &&
		day.RNowcastQ975 != nil && !slices.Contains(day.Uncertain, "r_nowcast_mean")
}

// nowcastR replaces the day's R with its nowcast R in a rule set's inputs:
// on a provisional day the complete-days R reads the not yet reported cases
// as a decline, so none of its statistics is an input.
func nowcastR(in thresholds.Inputs, day *schemas.Indicator) {
	delete(in, "r_median")
	delete(in, "r_prob_above_1")
	in[thresholds.MetricRMean] = *day.RNowcastMean
	in[thresholds.MetricRQ025] = *day.RNowcastQ025
	in[thresholds.MetricRQ975] = *day.RNowcastQ975
	if day.RNowcastMedian != nil {
		in["r_median"] = *day.RNowcastMedian
	}
}

// suppliedMetrics is every metric name inputsOf can supply.
func suppliedMetrics(fields []metricField) []string {
	out := []string{thresholds.MetricRestrictionLevel, thresholds.MetricPositivityPrev7dPct}
	for _, f := range fields {
		out = append(out, f.name)
	}
	slices.Sort(out)
	return out
}

// evalFlags turns an indicator's flags into the flags given to the rule set:
// indicator spellings turned into the rule sets' (schemas.RuleFlag),
// informational flags left out (schemas.IsInformationalFlag:
// what they warn of is already in the inputs), duplicates removed, order
// kept.
func evalFlags(flags []string) []string {
	var out []string
	for _, f := range flags {
		if schemas.IsInformationalFlag(f) {
			continue
		}
		f = schemas.RuleFlag(f)
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}
