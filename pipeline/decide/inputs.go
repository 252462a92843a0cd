package decide

import (
	"reflect"
	"slices"
	"strings"

	"github.com/epiwatch/epiwatch/pipeline/thresholds"
	"github.com/epiwatch/epiwatch/schemas"
)

// FlagProvisional is recorded in a decision's flags when it used a day the
// processor marked provisional (only with decide.use_provisional). It is not
// passed to the rule set: the operator chose to trust such days.
const FlagProvisional = "provisional"

// flagAliases maps processor flag names to the data-quality flags rule sets
// configure (thresholds.KnownFlags), so that a rule file's flags: section
// applies to them. The processor writes "beds_stale" (process.FlagBedsStale);
// thresholds calls the same condition "stale_beds".
var flagAliases = map[string]string{
	"beds_stale": thresholds.FlagStaleBeds,
}

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
// aliases resolved, informational flags left out (schemas.InformationalFlags:
// what they warn of is already in the inputs), duplicates removed, order
// kept.
func evalFlags(flags []string) []string {
	var out []string
	for _, f := range flags {
		if slices.Contains(schemas.InformationalFlags, f) {
			continue
		}
		if a, ok := flagAliases[f]; ok {
			f = a
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}
