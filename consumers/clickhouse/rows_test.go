package clickhouse_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestColumnListsMatchTheDDL: the sink names, for every table it writes,
// exactly the columns the migrations create, in the migrations' order, so
// a column added to one and not the other fails here rather than in
// production (18.16 needs the explicit list; a missing column would be a
// default nobody meant).
func TestColumnListsMatchTheDDL(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	if _, err := chsink.Migrate(ctx, db.Conn, db.Name, schemas.DefaultRegions()); err != nil {
		t.Fatal(err)
	}
	if len(chsink.StoreColumns) != 5 {
		t.Fatalf("%d tables", len(chsink.StoreColumns))
	}
	for name, columns := range chsink.StoreColumns {
		// DESCRIBE keeps the table's order (18.16's system.columns has no
		// position); its other columns differ between versions.
		rows, err := db.Conn.Query(ctx, "DESCRIBE TABLE `"+db.Name+"`.`"+name+"`")
		if err != nil {
			t.Fatal(err)
		}
		var ddl []string
		for rows.Next() {
			cols := make([]any, len(rows.Columns()))
			for i := range cols {
				cols[i] = new(string)
			}
			if err := rows.Scan(cols...); err != nil {
				t.Fatal(err)
			}
			ddl = append(ddl, *cols[0].(*string))
		}
		rows.Close()
		var sink []string
		for _, c := range strings.Split(columns, ",") {
			sink = append(sink, strings.TrimSpace(c))
		}
		if !slices.Equal(ddl, sink) {
			t.Errorf("%s:\n DDL  %v\n sink %v", name, ddl, sink)
		}
	}
}
