//go:build chdb

package dashboards_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/dashboards"
	"github.com/epiwatch/epiwatch/internal/testkit/compat"
)

// TestPanelsOnCurrentEngine runs every ClickHouse query of every dashboard
// on the current ClickHouse engine (chDB, build tag chdb), on the schema
// and the compatibility seed rows: TestClickHousePanels proves the queries
// on 18.16 against the simulation, this one that the current engine accepts
// them too (it is stricter: joined subqueries need aliases, for one).
func TestPanelsOnCurrentEngine(t *testing.T) {
	if os.Getenv("CHDB_LIB_PATH") == "" {
		t.Fatal("CHDB_LIB_PATH is not set: export CHDB_LIB_PATH=$(deploy/local/chdb.sh path), or use deploy/local/test.sh")
	}
	e, err := compat.OpenChDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The panels name tables without a database, as Grafana's data source
	// supplies it: the schema goes into chDB's default database.
	const db = "default"
	if _, err := compat.ApplySchema(ctx, e, db); err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile("../internal/testkit/compat/testdata/seed.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := compat.RunStatements(ctx, e, db, "seed.sql", string(seed)); err != nil {
		t.Fatal(err)
	}
	exp := expander{
		from: time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC),
		to:   time.Date(2020, 8, 1, 0, 0, 0, 0, time.UTC),
		vars: map[string]string{"region": "KZ-75", "country": "KZ"},
	}
	ran := 0
	for _, d := range loadAll(t) {
		for name, q := range d.Variables {
			if q == "" {
				continue
			}
			sql, err := exp.expand(q)
			if err != nil {
				t.Fatalf("%s variable %s: %v", d.File, name, err)
			}
			if _, _, err := e.Query(ctx, sql); err != nil {
				t.Errorf("%s variable %s on the current engine: %v\n%s", d.File, name, err, sql)
			}
		}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if tg.DatasourceUID != dashboards.ClickHouseUID {
					continue
				}
				sql, err := exp.expand(tg.RawSQL)
				if err != nil {
					t.Fatalf("%s panel %q query %s: %v", d.File, p.Title, tg.RefID, err)
				}
				ran++
				if _, _, err := e.Query(ctx, sql); err != nil {
					t.Errorf("%s panel %q query %s on the current engine: %v\n%s", d.File, p.Title, tg.RefID, err, sql)
				}
			}
		}
	}
	if ran == 0 {
		t.Fatal("no ClickHouse panel query found")
	}
	t.Logf("%d ClickHouse panel queries ran on the current engine", ran)
}
