package dashboards_test

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/dashboards"
	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	"github.com/epiwatch/epiwatch/internal/testkit/paneltest"
	"github.com/epiwatch/epiwatch/schemas"
)

// testDatabase is a fresh database on the real ClickHouse, migrated with the
// real migrations and loaded with the simulation, dropped when the test ends.
// conn's default database is the test database, as the Grafana data source's
// is the production one: the panels' unqualified table names resolve to it.
type testDatabase struct {
	name string
	conn driver.Conn // default database name
	sim  paneltest.Simulation
	run  paneltest.Runner
}

// newTestDatabase migrates a fresh database on the test server (chtest) and
// loads the simulation into it.
func newTestDatabase(t *testing.T) *testDatabase {
	t.Helper()
	ctx := context.Background()
	db := chtest.New(t)
	if _, err := chsink.Migrate(ctx, db.Conn, db.Name, "", schemas.DefaultRegions()); err != nil {
		t.Fatalf("migrate %s: %v", db.Name, err)
	}
	sim := paneltest.DefaultSimulation()
	if err := sim.Load(ctx, t, db.Conn, db.Name); err != nil {
		t.Fatalf("load the simulation into %s: %v", db.Name, err)
	}
	return &testDatabase{name: db.Name, conn: db.Conn, sim: sim, run: paneltest.ConnRunner(db.Conn)}
}

// TestClickHousePanels runs every ClickHouse query of every dashboard on
// ClickHouse (the local 18.16, or whatever EPIWATCH_TEST_CLICKHOUSE_ADDR
// points at) and checks that it returns rows and every column the panel's
// configuration names (paneltest.Check; the cluster test runs the same
// check on Distributed tables).
func TestClickHousePanels(t *testing.T) {
	t.Parallel()
	tdb := newTestDatabase(t)
	paneltest.Check(t, tdb.sim.Expander(), tdb.run)
}

// TestSimulationCoversTheViews makes sure the panels were checked against
// data in every table analysts read, not against empty results by accident.
func TestSimulationCoversTheViews(t *testing.T) {
	t.Parallel()
	tdb := newTestDatabase(t)
	var empty []string
	for _, view := range []string{"events", "cases", "contacts", "lab_tests", "bed_snapshots", "vaccinations", "regions", "indicators_latest", "decisions", "alerts", "signals", "nowcast"} {
		r, err := tdb.run(context.Background(), "SELECT 1 FROM "+view+" LIMIT 1")
		if err != nil {
			t.Fatalf("%s: %v", view, err)
		}
		if r.Rows == 0 {
			empty = append(empty, view)
		}
	}
	sort.Strings(empty)
	if len(empty) > 0 {
		t.Errorf("the simulation leaves %v empty", empty)
	}
	for _, q := range []struct{ what, sql string }{
		{"a stale facility", fmt.Sprintf("SELECT 1 FROM bed_snapshots WHERE facility_id = '%s' GROUP BY facility_id HAVING max(snapshot_time) < toDateTime('%s 00:00:00')", tdb.sim.StaleFacility, tdb.sim.To.AddDays(-2))},
		{"a level change", "SELECT 1 FROM decisions WHERE level_from != level_to LIMIT 1"},
		{"a failed alert", "SELECT 1 FROM alerts WHERE status = 'failed' LIMIT 1"},
		{"an R not estimable", "SELECT 1 FROM indicators_latest WHERE r_mean IS NULL LIMIT 1"},
		{"imported cases", "SELECT 1 FROM cases WHERE imported = 1 LIMIT 1"},
		{"a daily cases alarm in the region dashboard's region", fmt.Sprintf("SELECT 1 FROM signals WHERE region = '%s' AND stream = 'cases' AND alarm = 1 LIMIT 1", tdb.sim.Regions[0])},
		{"an alarm on the last day", fmt.Sprintf("SELECT 1 FROM signals WHERE date = toDate('%s') AND alarm = 1 LIMIT 1", tdb.sim.To)},
		{"a signal without a verdict", "SELECT 1 FROM signals WHERE isNull(upper_bound) AND notEmpty(note) LIMIT 1"},
		{"two nowcast vintages of one onset day", "SELECT 1 FROM nowcast GROUP BY region, date HAVING count() >= 2 LIMIT 1"},
		{"an incomplete nowcast day", "SELECT 1 FROM nowcast WHERE completeness < 1 AND q975 > median AND median > reported LIMIT 1"},
	} {
		r, err := tdb.run(context.Background(), q.sql)
		if err != nil {
			t.Fatalf("%s: %v", q.what, err)
		}
		if r.Rows == 0 {
			t.Errorf("the simulation has no %s", q.what)
		}
	}
}

// TestNowcastPanelShowsTheNewestVintage: the region dashboard's nowcast
// panel draws one point per onset day of the region's newest nowcast, not
// the older vintages the simulation also holds.
func TestNowcastPanelShowsTheNewestVintage(t *testing.T) {
	t.Parallel()
	tdb := newTestDatabase(t)
	exp := tdb.sim.Expander()
	const title = "Cases by onset: reported and nowcast (recent days)"
	var sql string
	for _, p := range paneltest.FindDashboard(t, dashboards.RegionUID).Panels {
		if p.Title == title && len(p.Targets) == 1 {
			sql = p.Targets[0].RawSQL
		}
	}
	if sql == "" {
		t.Fatalf("no panel %q with one query on the region dashboard", title)
	}
	sql, err := exp.Expand(sql)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tdb.run(context.Background(), sql)
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	if got.Rows != paneltest.NowcastDays {
		t.Errorf("the nowcast panel returns %d rows, want %d (the newest vintage's onset days)\n%s", got.Rows, paneltest.NowcastDays, sql)
	}
	var vintages uint64
	q := fmt.Sprintf("SELECT uniqExact(as_of) FROM nowcast WHERE region = '%s'", exp.Vars["region"])
	if err := tdb.conn.QueryRow(context.Background(), q).Scan(&vintages); err != nil || vintages < 2 {
		t.Errorf("%s: %d vintages (%v); the test needs an older one to leave out", q, vintages, err)
	}
}
