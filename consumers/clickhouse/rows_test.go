package clickhouse_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	"github.com/epiwatch/epiwatch/schemas"
	ddl "github.com/epiwatch/epiwatch/schemas/clickhouse"
)

// TestColumnListsMatchTheDDL: the sink (and RecordReplay) names, for every
// table it writes, exactly the columns the DDL in schemas/clickhouse creates
// (the migrations and replay_runs.sql), in the DDL's order, so
// a column added to one and not the other fails here rather than in
// production (18.16 needs the explicit list; a missing column would be a
// default nobody meant).
func TestColumnListsMatchTheDDL(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	if _, err := chsink.Migrate(ctx, db.Conn, db.Name, "", schemas.DefaultRegions()); err != nil {
		t.Fatal(err)
	}
	if err := db.Conn.Exec(ctx, ddl.Render(ddl.ReplayRuns(), db.Name)); err != nil {
		t.Fatal(err)
	}
	if len(chsink.StoreColumns) != 7 {
		t.Fatalf("%d tables", len(chsink.StoreColumns))
	}
	for name, columns := range chsink.StoreColumns {
		// DESCRIBE keeps the table's order (18.16's system.columns has no
		// position); its other columns differ between versions.
		rows, err := db.Conn.Query(ctx, "DESCRIBE TABLE `"+db.Name+"`.`"+name+"`")
		if err != nil {
			t.Fatal(err)
		}
		var described []string
		for rows.Next() {
			cols := make([]any, len(rows.Columns()))
			for i := range cols {
				cols[i] = new(string)
			}
			if err := rows.Scan(cols...); err != nil {
				t.Fatal(err)
			}
			described = append(described, *cols[0].(*string))
		}
		rows.Close()
		if sink := splitColumns(columns); !slices.Equal(described, sink) {
			t.Errorf("%s:\n DDL  %v\n sink %v", name, described, sink)
		}
	}
}

// splitColumns turns a column list as the package writes it ("a, b,\n\tc")
// into names.
func splitColumns(columns string) []string {
	var out []string
	for _, c := range strings.Split(columns, ",") {
		out = append(out, strings.TrimSpace(c))
	}
	return out
}
