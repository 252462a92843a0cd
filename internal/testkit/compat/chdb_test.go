//go:build chdb

package compat

import (
	"strings"

	ddl "github.com/epiwatch/epiwatch/schemas/clickhouse"
	"os"
	"testing"
)

// TestCurrentEngine runs the same schema and queries on the current
// ClickHouse engine through chDB. Build tag chdb; deploy/local/test.sh sets
// CHDB_LIB_PATH from deploy/local/chdb.sh.
func TestCurrentEngine(t *testing.T) {
	if os.Getenv("CHDB_LIB_PATH") == "" {
		t.Fatal("CHDB_LIB_PATH is not set: run deploy/local/chdb.sh fetch and export CHDB_LIB_PATH=$(deploy/local/chdb.sh path), or use deploy/local/test.sh")
	}
	e, err := OpenChDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	major, _, err := e.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if major < 24 {
		t.Fatalf("chDB engine is ClickHouse %d; the test is meant for current releases", major)
	}
	checkEngine(t, e, "epiwatch_compat")
}

// TestAnalystRoleCurrentEngine parses the documented analyst-role SQL with
// the current engine. chDB has no access-control storage (CREATE ROLE is
// refused there), so EXPLAIN AST is as far as it can go: the syntax is
// current; applying it is for a real server.
func TestAnalystRoleCurrentEngine(t *testing.T) {
	e, err := OpenChDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sql := strings.ReplaceAll(ddl.AnalystRole(), "{analyst_password}", "s3cret")
	n := 0
	for _, stmt := range ddl.Statements(ddl.Render(sql, "epiwatch")) {
		stmt = leadingComments.ReplaceAllString(stmt, "")
		if _, _, err := e.Query(t.Context(), "EXPLAIN AST "+stmt); err != nil {
			t.Errorf("%s: %v", stmt, err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d statements in analyst_role.sql, want 3", n)
	}
}
