//go:build chdb

package compat

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	ddl "github.com/epiwatch/epiwatch/schemas/clickhouse"
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

// TestClusterDDLCurrentEngine parses the cluster form of every migration
// (what `epiwatch migrate` runs with clickhouse.cluster set) with the
// current engine. chDB has no ZooKeeper and no remote_servers, so
// Replicated tables and ON CLUSTER cannot be created there; EXPLAIN AST
// proves the current parser takes every statement. Running them is
// deploy/local/clustertest's job, on 18.16.
func TestClusterDDLCurrentEngine(t *testing.T) {
	e, err := OpenChDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	major, minor, err := e.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const db, cluster = "epiwatch", "epiwatch"
	if _, _, err := e.Query(t.Context(), "EXPLAIN AST CREATE TABLE t ON CLUSTER (x UInt8) ENGINE"); err == nil {
		t.Fatal("EXPLAIN AST took a broken statement: it would prove nothing")
	}
	parse := func(what, stmt string) {
		t.Helper()
		stmt = leadingComments.ReplaceAllString(stmt, "")
		if _, _, err := e.Query(t.Context(), "EXPLAIN AST "+stmt); err != nil {
			t.Errorf("%s:\n%s\n: %v", what, stmt, err)
		}
	}
	parse("create database", ddl.CreateDatabase(db, cluster))
	stmts, err := ddl.OnCluster(ddl.Render(ddl.MigrationsTable, db), db, cluster)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		parse("schema_migrations", s)
	}
	migs, err := ddl.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range migs {
		for i, stmt := range ddl.Statements(ddl.Render(m.SQL, db)) {
			if ddl.Guarded(stmt, major, minor) {
				continue
			}
			cs, err := ddl.OnCluster(stmt, db, cluster)
			if err != nil {
				t.Errorf("%s statement %d: %v", m.Name, i+1, err)
				continue
			}
			for _, s := range cs {
				parse(m.Name+" statement "+strconv.Itoa(i+1), s)
				n++
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d cluster statements parsed", n)
	}
	t.Logf("%d cluster statements parsed by ClickHouse %d.%d", n, major, minor)
}

// TestEraseCurrentEngine runs the erasure's mutation (consumers/clickhouse
// EraseSQL, what `epiwatch erase` sends) on the current engine: the erased
// rows go, the others stay, and the erasures table takes the audit row.
// Its cluster form is parsed (EXPLAIN AST): ON CLUSTER needs a cluster.
func TestEraseCurrentEngine(t *testing.T) {
	e, err := OpenChDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const db = "epiwatch_erase"
	if _, err := ApplySchema(t.Context(), e, db); err != nil {
		t.Fatal(err)
	}
	if err := e.Exec(t.Context(), "INSERT INTO "+db+".events_v2_store (event_id, type, region, event_date, seq) VALUES ('a', 'case', 'KZ-75', '2026-12-01', 1), ('b', 'case', 'KZ-75', '2026-12-01', 2), ('c', 'case', 'KZ-71', '2026-12-02', 3)"); err != nil {
		t.Fatal(err)
	}
	_, del := chsink.EraseSQL(db, "", []uint64{1, 3})
	if err := e.Exec(t.Context(), del); err != nil {
		t.Fatalf("%s: %v", del, err)
	}
	left := func() int {
		_, n, err := e.Query(t.Context(), "SELECT seq FROM "+db+".events_v2_store")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for deadline := time.Now().Add(30 * time.Second); left() != 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d rows left 30 s after %s, want 1", left(), del)
		}
	}
	if _, n, err := e.Query(t.Context(), "SELECT seq FROM "+db+".events_v2_store WHERE seq = 2"); err != nil || n != 1 {
		t.Fatalf("the row not erased: %d rows, %v", n, err)
	}
	if err := e.Exec(t.Context(), "INSERT INTO "+db+".erasures (erasure_id, kind, erased_by, reason, erased_at, events, dead_letters, rows_deleted, stream_seq) VALUES ('x', 'person', 'dpo', 'ticket', now(), 2, 0, 2, 1)"); err != nil {
		t.Fatal(err)
	}
	_, delCluster := chsink.EraseSQL(db, "epiwatch", []uint64{1})
	if _, _, err := e.Query(t.Context(), "EXPLAIN AST "+delCluster); err != nil {
		t.Errorf("%s: %v", delCluster, err)
	}
}
