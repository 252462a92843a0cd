package dashboards_test

import (
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/paneltest"
)

// TestExpander pins the expansion of every macro and variable form the
// panel check (paneltest.Expander) knows, and its errors for the rest.
func TestExpander(t *testing.T) {
	e := paneltest.Expander{
		From: time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC),
		To:   time.Date(2020, 8, 31, 23, 59, 59, 0, time.UTC),
		Vars: map[string]string{"region": "KZ-75"},
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
		got, err := e.Expand(c.in)
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
