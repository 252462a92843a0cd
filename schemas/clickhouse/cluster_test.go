package clickhouse_test

import (
	"strings"
	"testing"

	ddl "github.com/epiwatch/epiwatch/schemas/clickhouse"
)

// TestOnCluster: each kind of statement the migrations hold gets its cluster
// form; the statements themselves run on the local 2 × 2 cluster in
// deploy/local/clustertest.
func TestOnCluster(t *testing.T) {
	for _, tc := range []struct {
		name, stmt string
		want       []string // substrings, one per resulting statement
	}{
		{"fact table", "CREATE TABLE IF NOT EXISTS `db`.events_store\n(event_id String, region String, seq UInt64)\nENGINE = ReplacingMergeTree(seq)\nORDER BY (region, event_id)",
			[]string{"CREATE TABLE IF NOT EXISTS `db`.events_store_local ON CLUSTER `c`\n(event_id String, region String, seq UInt64)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/events_store_local', '{replica}', seq)\nORDER BY (region, event_id)",
				"CREATE TABLE IF NOT EXISTS `db`.events_store ON CLUSTER `c` AS `db`.events_store_local\nENGINE = Distributed(`c`, `db`, `events_store_local`, cityHash64(region))"}},
		{"table on every node", "CREATE TABLE IF NOT EXISTS `db`.regions_store (code String, version UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY code",
			[]string{"`db`.regions_store ON CLUSTER `c` (code String, version UInt64) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/db/regions_store', '{replica}', version)"}},
		{"add column", "ALTER TABLE `db`.indicators_store ADD COLUMN tests UInt32 DEFAULT 0 AFTER x",
			[]string{"ALTER TABLE `db`.indicators_store_local ON CLUSTER `c` ADD COLUMN tests UInt32 DEFAULT 0 AFTER x",
				"DROP TABLE IF EXISTS `db`.indicators_store ON CLUSTER `c`",
				"CREATE TABLE IF NOT EXISTS `db`.indicators_store ON CLUSTER `c` AS `db`.indicators_store_local"}},
		{"dedup setting dropped", "ALTER TABLE `db`.alerts_store MODIFY SETTING non_replicated_deduplication_window = 1000", nil},
		{"view with a subquery", "CREATE VIEW IF NOT EXISTS `db`.cases AS\nSELECT event_id IN (SELECT corrects FROM `db`.events_store FINAL) AS x FROM `db`.events_store FINAL",
			[]string{"CREATE VIEW IF NOT EXISTS `db`.cases ON CLUSTER `c` AS\nSELECT event_id GLOBAL IN (SELECT corrects"}},
		{"materialized view", "CREATE MATERIALIZED VIEW IF NOT EXISTS `db`.nowcast_mv TO `db`.nowcast_store AS\nSELECT region FROM `db`.indicators_store WHERE 1",
			[]string{"`db`.nowcast_mv ON CLUSTER `c` TO `db`.nowcast_store_local AS\nSELECT region FROM `db`.indicators_store_local WHERE 1"}},
		{"drop", "DROP TABLE IF EXISTS `db`.decisions", []string{"DROP TABLE IF EXISTS `db`.decisions ON CLUSTER `c`"}},
		{"drop a sharded table", "DROP TABLE IF EXISTS `db`.events_store", []string{"DROP TABLE IF EXISTS `db`.events_store ON CLUSTER `c`", "DROP TABLE IF EXISTS `db`.events_store_local ON CLUSTER `c`"}},
		{"copy between sharded tables", "INSERT INTO `db`.events_v2_store (a, b)\nSELECT a, b\nFROM `db`.events_store", []string{"INSERT INTO `db`.events_v2_store (a, b)\nSELECT a, b\nFROM `db`.events_store"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ddl.OnCluster(tc.stmt, "db", "c")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d statements, want %d:\n%s", len(got), len(tc.want), strings.Join(got, ";\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("statement %d:\n%s\nwant it to contain\n%s", i+1, got[i], w)
				}
			}
		})
	}
	for _, bad := range []string{
		"CREATE TABLE IF NOT EXISTS `db`.mystery (a String) ENGINE = ReplacingMergeTree ORDER BY a",
		"CREATE TABLE IF NOT EXISTS `db`.events_store (a String) ENGINE = MergeTree ORDER BY a",
		"INSERT INTO `db`.events_store VALUES ('x')",
		"INSERT INTO `db`.events_v2_store (a) SELECT a FROM `db`.regions_store",
	} {
		if _, err := ddl.OnCluster(bad, "db", "c"); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
	// Every statement of every migration has a cluster form.
	migs, err := ddl.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migs {
		for i, s := range ddl.Statements(ddl.Render(m.SQL, "epiwatch")) {
			if _, err := ddl.OnCluster(s, "epiwatch", "epiwatch"); err != nil {
				t.Errorf("%s statement %d: %v", m.Name, i+1, err)
			}
		}
	}
}
