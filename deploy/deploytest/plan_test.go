package deploytest_test

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
	"github.com/epiwatch/epiwatch/schemas"
)

// planRuleSet is the rule set whose numbers the alert rules repeat:
// Kazakhstan's 2020 plan read literally (Resolution No. 489, section 7,
// item 1), the one the rule file's comments cite and the dashboards' bands
// are drawn from (dashboards/internal/fromrules).
const planRuleSet = "kz-2020-plan"

// TestAlertThresholdsFromPlan: the plan's lines in the alert rules (R above
// 1.3, ПЗК at or above 90 %) are values the shipped rule set compares with.
// A YAML file cannot import the rule set, so when its numbers change this
// test names the alert that must change with them.
func TestAlertThresholdsFromPlan(t *testing.T) {
	rs, err := thresholds.Load(planRuleSet)
	if err != nil {
		t.Fatal(err)
	}
	exprs, summaries := map[string]string{}, map[string]string{}
	for _, r := range alertRules(t) {
		name := str(get(r, "alert"))
		exprs[name], summaries[name] = str(get(r, "expr")), str(get(r, "annotations", "summary"))
	}
	for _, c := range []struct {
		alert, gauge, op string
		ruleMetric       string  // the rule file's name of the value
		scale            float64 // rule value = gauge value × scale
	}{
		{"EpiwatchRegionRAbove1_3", schemas.MetricRegionRUpper, ">", "r", 1},
		{"EpiwatchRegionBedOccupancyCritical", schemas.MetricRegionBedOccupancy, ">=", thresholds.MetricBedOccupancyPct, 100},
	} {
		expr, ok := exprs[c.alert]
		if !ok {
			t.Errorf("no rule %s", c.alert)
			continue
		}
		re := regexp.MustCompile(`^\s*` + regexp.QuoteMeta(c.gauge) + `\s*` + regexp.QuoteMeta(c.op) + `\s*([0-9.]+)\s*$`)
		m := re.FindStringSubmatch(expr)
		if m == nil {
			t.Errorf("rule %s: expr %q is not %s %s <number>", c.alert, expr, c.gauge, c.op)
			continue
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Errorf("rule %s: %v", c.alert, err)
			continue
		}
		cuts := rs.Cuts(c.ruleMetric)
		i := slices.IndexFunc(cuts, func(cut float64) bool { return math.Abs(cut-v*c.scale) < 1e-9 })
		if i < 0 {
			t.Errorf("rule %s compares %s with %s (%s %g), which rule set %s never does: it compares %s with %v; follow the plan in deploy/prometheus/rules/epiwatch.rules.yml and its unit tests",
				c.alert, c.gauge, m[1], c.ruleMetric, v*c.scale, planRuleSet, c.ruleMetric, cuts)
			continue
		}
		if s := strconv.FormatFloat(cuts[i], 'f', -1, 64); !strings.Contains(summaries[c.alert], s) {
			t.Errorf("rule %s: summary %q does not say %s, the plan's value its expr compares with", c.alert, summaries[c.alert], s)
		}
	}
}
