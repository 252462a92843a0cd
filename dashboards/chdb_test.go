//go:build chdb

package dashboards_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/compat"
	"github.com/epiwatch/epiwatch/internal/testkit/paneltest"
)

// TestPanelsOnCurrentEngine runs every ClickHouse query of every dashboard
// on the current ClickHouse engine (chDB, build tag chdb), on the schema
// and the compatibility seed rows: TestClickHousePanels proves the queries
// on 18.16 against the simulation, this one that the current engine accepts
// them too (it is stricter: joined subqueries need aliases, for one) and
// returns the columns the panels name. The seed has a few rows, so empty
// results are allowed (paneltest.CheckColumns).
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
	paneltest.CheckColumns(t, paneltest.Expander{
		From: time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC),
		To:   time.Date(2020, 8, 1, 0, 0, 0, 0, time.UTC),
		Vars: map[string]string{"region": "KZ-75", "country": "KZ"},
	}, paneltest.EngineRunner(e))
}
