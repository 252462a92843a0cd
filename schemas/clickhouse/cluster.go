package clickhouse

import (
	"fmt"
	"regexp"
	"strings"
)

// Cluster mode (clickhouse.cluster: NAME). The migration files are written
// once, for a single server; OnCluster rewrites each rendered statement for a
// cluster of shards and replicas named in the servers' remote_servers, with
// ZooKeeper and the {shard} and {replica} macros set:
//
//   - a fact table X becomes X_local, a ReplicatedReplacingMergeTree at
//     /clickhouse/tables/{shard}/<db>/X_local with the same columns, key and
//     version, plus X, a Distributed table over X_local sharded by region.
//     Analysts, views, dashboards and the sink keep using X, so their SQL is
//     the same on one server and on the cluster.
//   - Sharding by region keeps every row of a region, with all its versions
//     and duplicates, on one shard: ReplacingMergeTree and FINAL collapse
//     within a shard only, and per-region questions are what epiwatch asks.
//   - Small tables every node needs whole (regions_store, schema_migrations,
//     the erasure log)
//     are replicated to all nodes under one ZooKeeper path instead of
//     sharded, so each node reads its own full copy.
//   - Views and DROPs run ON CLUSTER; a subquery of a view over a
//     Distributed table becomes GLOBAL IN (ClickHouse refuses a
//     distributed subquery inside a query sent to the shards).
//   - The materialized view that fills nowcast_store reads inserts into
//     indicators_store_local and writes nowcast_store_local on the node
//     that took the block; both are replicated, so every replica gets both.
//   - DROP of a sharded table drops its Distributed table and its local
//     parts; INSERT … SELECT between two sharded tables (a migration that
//     replaces a table) runs once, Distributed to Distributed.
//   - ALTER … ADD COLUMN runs on X_local, and X is created again over it
//     (18.16 refuses ALTER ON CLUSTER of the Distributed table); MODIFY SETTING
//     non_replicated_deduplication_window is dropped: replicated tables
//     de-duplicate inserted blocks anyway (replicated_deduplication_window).
//
// Every statement stays 18.16 syntax; the cluster tests run them on the
// local cluster (deploy/local/cluster.sh) and chDB parses them.

// shardedTables are the fact tables: sharded by region behind a Distributed
// table of the analysts' name.
var shardedTables = map[string]bool{
	"events_store": true, "events_v2_store": true, "indicators_store": true, "decisions_store": true,
	"alerts_store": true, "signals_store": true, "nowcast_store": true,
}

// everywhereTables are replicated whole to every node.
var everywhereTables = map[string]bool{"regions_store": true, "schema_migrations": true, "erasures": true}

// LocalSuffix names a sharded table's per-node part.
const LocalSuffix = "_local"

var (
	createTableRe = regexp.MustCompile(`(?is)^((?:\s*--[^\n]*\n)*\s*CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+)(\S+)\.(\w+)(\s*\()`)
	engineRe      = regexp.MustCompile(`(?i)ENGINE\s*=\s*ReplacingMergeTree(?:\(([^)]*)\))?`)
	alterRe       = regexp.MustCompile(`(?is)^((?:\s*--[^\n]*\n)*\s*ALTER\s+TABLE\s+)(\S+)\.(\w+)(\s+)(.*)$`)
	createViewRe  = regexp.MustCompile(`(?is)^((?:\s*--[^\n]*\n)*\s*CREATE\s+(?:MATERIALIZED\s+)?VIEW\s+IF\s+NOT\s+EXISTS\s+)(\S+)\.(\w+)(\s)`)
	dropRe        = regexp.MustCompile(`(?is)^((?:\s*--[^\n]*\n)*\s*DROP\s+TABLE\s+IF\s+EXISTS\s+)(\S+)\.(\w+)\s*$`)
	inSubqueryRe  = regexp.MustCompile(`(?i)\bIN\s*\(\s*SELECT\b`)
	mvTargetRe    = regexp.MustCompile(`(?i)\bTO\s+(\S+)\.(\w+)`)
	mvSourceRe    = regexp.MustCompile(`(?i)\bFROM\s+(\S+)\.(\w+)`)
	insertSelRe   = regexp.MustCompile(`(?is)^(?:\s*--[^\n]*\n)*\s*INSERT\s+INTO\s+\S+\.(\w+)\s*\([^)]*\)\s*SELECT\b.*\bFROM\s+\S+\.(\w+)`)
)

// OnCluster rewrites one rendered statement (Render, then Statements) for
// the cluster: zero, one or two statements. db is the database name as
// Render wrote it (unquoted).
func OnCluster(stmt, db, cluster string) ([]string, error) {
	on := " ON CLUSTER " + quoteIdent(cluster)
	switch {
	case createTableRe.MatchString(stmt):
		m := createTableRe.FindStringSubmatch(stmt)
		qdb, table := m[2], m[3]
		em := engineRe.FindStringSubmatch(stmt)
		if em == nil {
			return nil, fmt.Errorf("cluster DDL: table %s is not a ReplacingMergeTree", table)
		}
		version := ""
		if strings.TrimSpace(em[1]) != "" {
			version = ", " + strings.TrimSpace(em[1])
		}
		switch {
		case everywhereTables[table]:
			engine := fmt.Sprintf("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/%s/%s', '{replica}'%s)", db, table, version)
			head := m[1] + qdb + "." + table + on + m[4]
			return []string{engineRe.ReplaceAllLiteralString(createTableRe.ReplaceAllLiteralString(stmt, head), engine)}, nil
		case shardedTables[table]:
			local := table + LocalSuffix
			engine := fmt.Sprintf("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/%s/%s', '{replica}'%s)", db, local, version)
			head := m[1] + qdb + "." + local + on + m[4]
			localStmt := engineRe.ReplaceAllLiteralString(createTableRe.ReplaceAllLiteralString(stmt, head), engine)
			return []string{localStmt, distributed(qdb, db, table, cluster)}, nil
		}
		return nil, fmt.Errorf("cluster DDL: table %s is neither sharded nor replicated everywhere (add it to shardedTables or everywhereTables in schemas/clickhouse/cluster.go)", table)

	case alterRe.MatchString(stmt):
		m := alterRe.FindStringSubmatch(stmt)
		qdb, table, rest := m[2], m[3], m[5]
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(rest)), "MODIFY SETTING NON_REPLICATED_DEDUPLICATION_WINDOW") {
			return nil, nil
		}
		switch {
		case shardedTables[table]:
			// 18.16 refuses ALTER ON CLUSTER of a table that is not
			// replicated in a cluster whose shards are ("isn't replicated,
			// but shard #1 is replicated according to its cluster
			// definition"): the Distributed table, which holds no data, is
			// created again over the altered local table instead.
			return []string{
				m[1] + qdb + "." + table + LocalSuffix + on + m[4] + rest,
				"DROP TABLE IF EXISTS " + qdb + "." + table + on,
				distributed(qdb, db, table, cluster),
			}, nil
		case everywhereTables[table]:
			return []string{m[1] + qdb + "." + table + on + m[4] + rest}, nil
		}
		return nil, fmt.Errorf("cluster DDL: ALTER of unknown table %s", table)

	case createViewRe.MatchString(stmt):
		m := createViewRe.FindStringSubmatch(stmt)
		qdb, view := m[2], m[3]
		out := createViewRe.ReplaceAllLiteralString(stmt, m[1]+qdb+"."+view+on+m[4])
		if strings.Contains(strings.ToUpper(m[1]), "MATERIALIZED") {
			// Insert-time views work on the node that takes the block:
			// local source, local target.
			out = mvTargetRe.ReplaceAllStringFunc(out, func(s string) string { return s + LocalSuffix })
			out = mvSourceRe.ReplaceAllStringFunc(out, func(s string) string { return s + LocalSuffix })
			return []string{out}, nil
		}
		return []string{inSubqueryRe.ReplaceAllString(out, "GLOBAL IN (SELECT")}, nil

	case dropRe.MatchString(stmt):
		m := dropRe.FindStringSubmatch(stmt)
		out := []string{strings.TrimRight(stmt, " \n\t") + on}
		if shardedTables[m[3]] {
			// A sharded table is its Distributed table and the local
			// parts under it.
			out = append(out, m[1]+m[2]+"."+m[3]+LocalSuffix+on)
		}
		return out, nil

	case insertSelRe.MatchString(stmt):
		// A copy between sharded tables (a table replaced by another):
		// run once, on the node the migration is connected to, from
		// Distributed table to Distributed table, which routes every row
		// to its shard.
		m := insertSelRe.FindStringSubmatch(stmt)
		if !shardedTables[m[1]] || !shardedTables[m[2]] {
			return nil, fmt.Errorf("cluster DDL: INSERT … SELECT into %s from %s: only copies between sharded tables have a cluster form", m[1], m[2])
		}
		return []string{stmt}, nil
	}
	return nil, fmt.Errorf("cluster DDL: no cluster form for statement %.80q", stmt)
}

// distributed is the Distributed table of the analysts' name over a sharded
// table's local part, sharded by region.
func distributed(qdb, db, table, cluster string) string {
	local := table + LocalSuffix
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s ON CLUSTER %s AS %s.%s\nENGINE = Distributed(%s, %s, %s, cityHash64(region))",
		qdb, table, quoteIdent(cluster), qdb, local, quoteIdent(cluster), quoteIdent(db), quoteIdent(local))
}

// CreateDatabase is the statement that creates db on one server, or on every
// node of cluster.
func CreateDatabase(db, cluster string) string {
	s := "CREATE DATABASE IF NOT EXISTS " + quoteIdent(db)
	if cluster != "" {
		s += " ON CLUSTER " + quoteIdent(cluster)
	}
	return s
}
