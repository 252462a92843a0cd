// Package paneltest runs every ClickHouse query of epiwatch's committed
// Grafana dashboards (dashboards/json) on a real database, with Grafana's
// macros expanded, and checks what the panels need of each result. It is a
// test kit rather than test code of package dashboards so that other
// packages' tests can run the same check on other deployments: the
// dashboards' own tests run it on a single 18.16 server and on the current
// engine (chDB), the cluster test on the Distributed tables of a cluster.
//
// The pieces:
//
//   - Dashboards reads the committed JSON (what Grafana provisions).
//   - Expander expands the macros and template variables the panels use.
//   - Simulation is a small deterministic outbreak; Load writes it into a
//     migrated database (one server or a cluster) so every panel has rows.
//   - Check runs every panel and variable query through a Runner;
//     EngineRunner and ConnRunner make one from a compat.Engine or a
//     clickhouse-go connection.
//
// A typical caller:
//
//	sim := paneltest.DefaultSimulation()
//	if err := sim.Load(ctx, t, conn, db); err != nil { t.Fatal(err) }
//	paneltest.Check(t, sim.Expander(), paneltest.ConnRunner(conn))
package paneltest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/epiwatch/epiwatch/dashboards"
	"github.com/epiwatch/epiwatch/internal/testkit/compat"
)

// Result is what one query returned: its column names, in order, and how
// many rows.
type Result struct {
	Columns []string
	Rows    int
}

// Runner runs one expanded query. The queries name tables without a
// database, as Grafana's data source supplies it: a Runner's connection
// must have the database under test as its default.
type Runner func(ctx context.Context, sql string) (Result, error)

// QueryTimeout bounds each query an EngineRunner runs, so a query that
// hangs (a distributed query waiting for a dead shard) fails the check
// instead of the test binary's timeout.
const QueryTimeout = 30 * time.Second

// EngineRunner runs queries on a compat.Engine (the 18.16 server through
// compat.Server, the current engine through compat.ChDB).
func EngineRunner(e compat.Engine) Runner {
	return func(ctx context.Context, sql string) (Result, error) {
		ctx, cancel := context.WithTimeout(ctx, QueryTimeout)
		defer cancel()
		cols, n, err := e.Query(ctx, sql)
		return Result{Columns: cols, Rows: n}, err
	}
}

// ConnRunner runs queries on a clickhouse-go connection whose default
// database is the one under test (chtest.New's, or chsink.Open with
// Config.DefaultDatabase).
func ConnRunner(conn driver.Conn) Runner { return EngineRunner(compat.Server{Conn: conn}) }

// Check runs every ClickHouse query of every committed dashboard, and every
// template variable's query, through run with exp's expansion, and fails t
// for each that does not run, returns no rows, or lacks a column the panel
// needs: a time-series query's first column must be time, and the panel's
// configuration (Panel.Fields) must name only columns its queries return.
// The rows requirement makes the data behind exp matter: use it on a
// database the Simulation was loaded into, with Simulation.Expander.
func Check(t testing.TB, exp Expander, run Runner) {
	t.Helper()
	check(t, exp, run, true)
}

// CheckColumns is Check without the rows requirement, for an engine holding
// only a few seed rows (the current engine through chDB, on
// internal/testkit/compat/testdata/seed.sql): every query must run and
// return the columns its panel needs, empty or not.
func CheckColumns(t testing.TB, exp Expander, run Runner) {
	t.Helper()
	check(t, exp, run, false)
}

func check(t testing.TB, exp Expander, run Runner, needRows bool) {
	t.Helper()
	ctx := context.Background()
	ran := 0
	for _, d := range Dashboards(t) {
		for _, name := range slices.Sorted(maps.Keys(d.Variables)) {
			q := d.Variables[name]
			if q == "" {
				continue
			}
			sql, err := exp.Expand(q)
			if err != nil {
				t.Errorf("%s variable %s: %v", d.File, name, err)
				continue
			}
			r, err := run(ctx, sql)
			if err != nil {
				t.Errorf("%s variable %s: %v\n%s", d.File, name, err, sql)
			} else if needRows && r.Rows == 0 {
				t.Errorf("%s variable %s: no rows", d.File, name)
			}
		}
		for _, p := range d.Panels {
			columns := map[string]bool{}
			chPanel := false
			for _, tg := range p.Targets {
				if tg.DatasourceUID != dashboards.ClickHouseUID {
					continue
				}
				chPanel = true
				sql, err := exp.Expand(tg.RawSQL)
				if err != nil {
					t.Errorf("%s panel %q query %s: %v", d.File, p.Title, tg.RefID, err)
					continue
				}
				r, err := run(ctx, sql)
				ran++
				if err != nil {
					t.Errorf("%s panel %q query %s failed: %v\n%s", d.File, p.Title, tg.RefID, err, sql)
					continue
				}
				if needRows && r.Rows == 0 {
					t.Errorf("%s panel %q query %s returned no rows on the simulation\n%s", d.File, p.Title, tg.RefID, sql)
				}
				if tg.Format == 0 && (len(r.Columns) == 0 || r.Columns[0] != "time") {
					t.Errorf("%s panel %q query %s: a time-series query's first column must be time, got %v", d.File, p.Title, tg.RefID, r.Columns)
				}
				for _, c := range r.Columns {
					columns[c] = true
				}
			}
			if !chPanel {
				continue
			}
			for _, f := range slices.Sorted(maps.Keys(p.Fields)) {
				if !columns[f] {
					t.Errorf("%s panel %q: its %s names field %q, which its queries do not return (columns: %s)",
						d.File, p.Title, p.Fields[f], f, strings.Join(slices.Sorted(maps.Keys(columns)), ", "))
				}
			}
		}
	}
	if ran == 0 {
		t.Fatal("no ClickHouse panel query found")
	}
	t.Logf("%d ClickHouse panel queries ran", ran)
}
