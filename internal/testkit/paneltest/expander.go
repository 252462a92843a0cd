package paneltest

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Expander expands exactly the Grafana macros and template variables the
// dashboards use, as the ClickHouse plugin (pkg/macros) and Grafana's
// template service would for a fixed time range, so a panel's SQL can run
// outside Grafana. Anything else starting with $ is an error, so a panel
// using a new macro fails the check until the expander (and the plugin)
// know it.
type Expander struct {
	From, To time.Time         // the dashboard's time range
	Vars     map[string]string // template variable values by name
}

var (
	macroCallRe = regexp.MustCompile(`\$__(timeFilter|dateFilter)\(([^()]*)\)`)
	varBraceRe  = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)
	varPlainRe  = regexp.MustCompile(`\$([A-Za-z][A-Za-z0-9_]*)`)
	leftoverRe  = regexp.MustCompile(`\$\S*`)
)

// Expand returns sql with $__timeFilter(col), $__dateFilter(col),
// $__fromTime, $__toTime, ${var} and $var replaced.
func (e Expander) Expand(sql string) (string, error) {
	dt := func(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
	d := func(t time.Time) string { return fmt.Sprintf("toDate('%s')", t.UTC().Format("2006-01-02")) }
	var err error
	out := macroCallRe.ReplaceAllStringFunc(sql, func(m string) string {
		sub := macroCallRe.FindStringSubmatch(m)
		col := strings.TrimSpace(sub[2])
		if col == "" || strings.Contains(col, ",") {
			err = fmt.Errorf("%s: want exactly one column", m)
			return m
		}
		if sub[1] == "timeFilter" {
			return fmt.Sprintf("%s >= %s AND %s <= %s", col, dt(e.From), col, dt(e.To))
		}
		return fmt.Sprintf("%s >= %s AND %s <= %s", col, d(e.From), col, d(e.To))
	})
	out = strings.ReplaceAll(out, "$__fromTime", dt(e.From))
	out = strings.ReplaceAll(out, "$__toTime", dt(e.To))
	replaceVar := func(re *regexp.Regexp) {
		out = re.ReplaceAllStringFunc(out, func(m string) string {
			name := re.FindStringSubmatch(m)[1]
			v, ok := e.Vars[name]
			if !ok {
				if err == nil {
					err = fmt.Errorf("unknown template variable %s", m)
				}
				return m
			}
			return v
		})
	}
	replaceVar(varBraceRe)
	replaceVar(varPlainRe)
	if err == nil {
		if left := leftoverRe.FindString(out); left != "" {
			err = fmt.Errorf("unexpanded macro %q (the test's expander knows $__timeFilter, $__dateFilter, $__fromTime, $__toTime and the dashboards' variables)", left)
		}
	}
	return out, err
}
