package dashboards_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// expander expands exactly the Grafana macros and template variables the
// dashboards use, as the ClickHouse plugin (pkg/macros) and Grafana's
// template service would for a fixed time range. Anything else starting with
// $ is an error, so a panel using a new macro fails here until the expander
// (and the plugin) know it.
type expander struct {
	from, to time.Time
	vars     map[string]string
}

var (
	macroCallRe = regexp.MustCompile(`\$__(timeFilter|dateFilter)\(([^()]*)\)`)
	varBraceRe  = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)
	varPlainRe  = regexp.MustCompile(`\$([A-Za-z][A-Za-z0-9_]*)`)
	leftoverRe  = regexp.MustCompile(`\$\S*`)
)

func (e expander) expand(sql string) (string, error) {
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
			return fmt.Sprintf("%s >= %s AND %s <= %s", col, dt(e.from), col, dt(e.to))
		}
		return fmt.Sprintf("%s >= %s AND %s <= %s", col, d(e.from), col, d(e.to))
	})
	out = strings.ReplaceAll(out, "$__fromTime", dt(e.from))
	out = strings.ReplaceAll(out, "$__toTime", dt(e.to))
	replaceVar := func(re *regexp.Regexp) {
		out = re.ReplaceAllStringFunc(out, func(m string) string {
			name := re.FindStringSubmatch(m)[1]
			v, ok := e.vars[name]
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

func TestExpander(t *testing.T) {
	e := expander{
		from: time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC),
		to:   time.Date(2020, 8, 31, 23, 59, 59, 0, time.UTC),
		vars: map[string]string{"region": "KZ-75"},
	}
	for _, c := range []struct{ in, want, err string }{
		{"WHERE $__timeFilter(at)", "WHERE at >= toDateTime(1590969600) AND at <= toDateTime(1598918399)", ""},
		{"WHERE $__dateFilter( date )", "WHERE date >= toDate('2020-06-01') AND date <= toDate('2020-08-31')", ""},
		{"x <= $__toTime AND y >= $__fromTime", "x <= toDateTime(1598918399) AND y >= toDateTime(1590969600)", ""},
		{"region = '${region}' OR region = '$region'", "region = 'KZ-75' OR region = 'KZ-75'", ""},
		{"$__timeInterval(at)", "", "unexpanded macro"},
		{"'${country}'", "", "unknown template variable"},
		{"$__timeFilter(a, b)", "", "exactly one column"},
	} {
		got, err := e.expand(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("expand(%q): error %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("expand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
