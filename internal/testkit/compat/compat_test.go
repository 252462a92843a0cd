package compat

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	ddl "github.com/epiwatch/epiwatch/schemas/clickhouse"
)

// checkEngine applies the schema, loads the seed rows, and runs every shipped
// query on e. Both engines get exactly this.
func checkEngine(t *testing.T, e Engine, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	major, minor, err := e.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %d.%d", e.Name(), major, minor)

	steps, err := ApplySchema(ctx, e, db)
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, s := range steps {
		if !s.Skipped {
			ran++
		}
	}
	if ran < 10 {
		t.Fatalf("only %d DDL statements ran", ran)
	}
	// Applying twice must be a no-op (IF NOT EXISTS everywhere): migrate runs
	// on every start, from several processes.
	if _, err := ApplySchema(ctx, e, db); err != nil {
		t.Fatalf("second apply: %v", err)
	}

	seed, err := os.ReadFile("testdata/seed.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := RunStatements(ctx, e, db, "testdata/seed.sql", string(seed)); err != nil {
		t.Fatal(err)
	}

	// The views deduplicate a redelivered row and keep the newest version.
	counts := []struct {
		sql  string
		cols []string
		rows int
	}{
		{"SELECT event_id FROM {db}.events", []string{"event_id"}, 9},
		{"SELECT event_id FROM {db}.cases", []string{"event_id"}, 2},
		{"SELECT event_id FROM {db}.contacts", []string{"event_id"}, 1},
		{"SELECT event_id FROM {db}.lab_tests", []string{"event_id"}, 1},
		{"SELECT event_id FROM {db}.bed_snapshots", []string{"event_id"}, 1},
		{"SELECT event_id FROM {db}.vaccinations", []string{"event_id"}, 1},
		{"SELECT event_id, corrects FROM {db}.corrections", []string{"event_id", "corrects"}, 1},
		{"SELECT event_id FROM {db}.cases WHERE status = 'retracted'", []string{"event_id"}, 1},
		{"SELECT event_id FROM {db}.cases WHERE status = 'current'", []string{"event_id"}, 1},
		{"SELECT event_id, status FROM {db}.lab_tests WHERE status = 'current'", []string{"event_id", "status"}, 1},
		{"SELECT event_id, feed FROM {db}.report_completions", []string{"event_id", "feed"}, 1},
		{"SELECT facility_id, facility_status, capacity_infectious FROM {db}.facilities", []string{"facility_id", "facility_status", "capacity_infectious"}, 1},
		{"SELECT code FROM {db}.regions", []string{"code"}, 2},
		{"SELECT region, date, r_mean, r_q025, r_q975, bed_occupancy_pct, icu_occupancy_pct, positivity_7d_pct, cases_7d_per_100k, computed_at FROM {db}.indicators_latest",
			[]string{"region", "date", "r_mean", "r_q025", "r_q975", "bed_occupancy_pct", "icu_occupancy_pct", "positivity_7d_pct", "cases_7d_per_100k", "computed_at"}, 4},
		{"SELECT decision_id FROM {db}.decisions", []string{"decision_id"}, 1},
		{"SELECT alert_id FROM {db}.alerts", []string{"alert_id"}, 1},
		// Two versions of one signal: the view keeps the newest.
		{"SELECT region, observed FROM {db}.signals WHERE observed = 40", []string{"region", "observed"}, 1},
		{"SELECT region FROM {db}.signals", []string{"region"}, 1},
		// Nowcast vintages (011's materialized view): two of one onset day,
		// the retried block shown once, none from indicators without a
		// nowcast; the values are the indicator record's.
		{"SELECT region, date, as_of FROM {db}.nowcast", []string{"region", "date", "as_of"}, 3},
		{"SELECT reported FROM {db}.nowcast WHERE date = '2020-06-29' AND as_of = '2020-07-02' AND version = 21 AND reported = 4 AND median = 5 AND q025 = 4 AND q975 = 7 AND completeness = 0.8 AND r_mean = 1.05 AND r_median = 1.05 AND r_q975 = 1.3",
			[]string{"reported"}, 1},
		{"SELECT reported FROM {db}.nowcast WHERE date = '2020-06-29' AND as_of = '2020-07-01' AND reported = 3 AND q975 = 9", []string{"reported"}, 1},
		{"SELECT reported FROM {db}.nowcast WHERE date = '2020-06-30' AND isNull(r_mean)", []string{"reported"}, 1},
		{"SELECT nowcast_as_of, cases_nowcast_median FROM {db}.indicators_latest WHERE date = '2020-06-29' AND nowcast_as_of = '2020-07-02' AND cases_nowcast_median = 5",
			[]string{"nowcast_as_of", "cases_nowcast_median"}, 1},
	}
	for _, c := range counts {
		cols, n, err := e.Query(ctx, ddl.Render(c.sql, db))
		if err != nil {
			t.Errorf("%s: %v", c.sql, err)
			continue
		}
		if n != c.rows || strings.Join(cols, ",") != strings.Join(c.cols, ",") {
			t.Errorf("%s: %d rows %v, want %d rows %v", c.sql, n, cols, c.rows, c.cols)
		}
	}

	qs, err := ddl.Queries()
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) == 0 {
		t.Fatal("no shipped queries found")
	}
	for _, q := range qs {
		for i, stmt := range ddl.Statements(ddl.Render(q.SQL, db)) {
			cols, n, err := e.Query(ctx, stmt)
			if err != nil {
				t.Errorf("%s %d.%d: query %s statement %d: %v", e.Name(), major, minor, q.Name, i+1, err)
				continue
			}
			if n == 0 || len(cols) == 0 {
				t.Errorf("%s: query %s returned %d rows, %d columns on the seed data", e.Name(), q.Name, n, len(cols))
			}
		}
	}
	// latest_nowcast.sql: only the newest vintage (2020-07-02: two onset days).
	for _, q := range qs {
		if q.Name != "latest_nowcast.sql" {
			continue
		}
		if _, n, err := e.Query(ctx, ddl.Statements(ddl.Render(q.SQL, db))[0]); err != nil || n != 2 {
			t.Errorf("%s: %d rows (%v), want the 2 onset days of the newest vintage", q.Name, n, err)
		}
	}
	// The latest indicator version wins.
	cols, n, err := e.Query(ctx, ddl.Render("SELECT region FROM {db}.indicators_latest WHERE region = 'KZ-75' AND cases = 2 AND r_mean = 1.25", db))
	if err != nil || n != 1 {
		t.Errorf("latest indicator version: %v rows=%d cols=%v", err, n, cols)
	}
}

// TestServer runs the schema and the queries on the local ClickHouse server
// (Debian's 18.16 here).
func TestServer(t *testing.T) {
	db := chtest.New(t)
	checkEngine(t, Server{Conn: db.Conn}, db.Name)
}
