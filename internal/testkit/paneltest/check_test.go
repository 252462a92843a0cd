package paneltest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/dashboards"
)

// recorder collects a check's failures instead of failing the test, so the
// test can assert that the check fails when it should.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(f string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(f, args...))
}

func (r *recorder) count(substr string) int {
	n := 0
	for _, e := range r.errors {
		if strings.Contains(e, substr) {
			n++
		}
	}
	return n
}

// TestCheckFails: on results without rows or columns, Check reports every
// query as empty and every time series and configured field as missing;
// CheckColumns the same but the rows; a query that fails is reported as such.
func TestCheckFails(t *testing.T) {
	queries := 0
	for _, d := range Dashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if tg.DatasourceUID == dashboards.ClickHouseUID {
					queries++
				}
			}
		}
	}
	empty := func(context.Context, string) (Result, error) { return Result{Columns: []string{"x"}}, nil }
	strict, lenient := &recorder{TB: t}, &recorder{TB: t}
	Check(strict, DefaultSimulation().Expander(), empty)
	CheckColumns(lenient, DefaultSimulation().Expander(), empty)
	if n := strict.count("returned no rows"); n != queries {
		t.Errorf("Check reported %d empty panel queries of %d", n, queries)
	}
	for _, r := range []*recorder{strict, lenient} {
		if r.count("first column must be time") == 0 || r.count("which its queries do not return") == 0 {
			t.Errorf("a missing time column or configured field went unreported: %q", r.errors)
		}
	}
	if n := lenient.count("no rows"); n != 0 {
		t.Errorf("CheckColumns reported %d empty results", n)
	}
	failing := &recorder{TB: t}
	Check(failing, DefaultSimulation().Expander(), func(context.Context, string) (Result, error) {
		return Result{}, errors.New("boom")
	})
	if n := failing.count("failed: boom"); n != queries {
		t.Errorf("Check reported %d failed panel queries of %d", n, queries)
	}
}
