//go:build chdb

package clickhouse_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/testkit/compat"
	ddl "github.com/epiwatch/epiwatch/schemas/clickhouse"
)

// TestColumnListsMatchTheDDLCurrentEngine is TestColumnListsMatchTheDDL on
// the current ClickHouse engine (chDB): the same DDL files, applied as
// `epiwatch migrate` does, plus replay_runs.sql, give every table the
// columns the package writes, in its order. (SELECT * LIMIT 0 names them:
// chDB's engine here returns result metadata, not rows.)
func TestColumnListsMatchTheDDLCurrentEngine(t *testing.T) {
	if os.Getenv("CHDB_LIB_PATH") == "" {
		t.Fatal("CHDB_LIB_PATH is not set: run deploy/local/chdb.sh fetch and export CHDB_LIB_PATH=$(deploy/local/chdb.sh path), or use deploy/local/test.sh")
	}
	e, err := compat.OpenChDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const db = "epiwatch_columns"
	if _, err := compat.ApplySchema(ctx, e, db); err != nil {
		t.Fatal(err)
	}
	if err := compat.RunStatements(ctx, e, db, "replay_runs.sql", ddl.ReplayRuns()); err != nil {
		t.Fatal(err)
	}
	for name, columns := range chsink.StoreColumns {
		got, _, err := e.Query(ctx, "SELECT * FROM `"+db+"`.`"+name+"` LIMIT 0")
		if err != nil {
			t.Fatal(err)
		}
		if sink := splitColumns(columns); !slices.Equal(got, sink) {
			t.Errorf("%s:\n DDL  %v\n sink %v", name, got, sink)
		}
	}
}
