package clickhouse

import (
	"context"
	"fmt"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/epiwatch/epiwatch/schemas"
	ddl "github.com/epiwatch/epiwatch/schemas/clickhouse"
)

// MigrationReport says what Migrate did.
type MigrationReport struct {
	Database string
	Applied  []string // migration files applied now
	Current  int      // schema version after the run
	Regions  int      // regions (re)loaded
}

// Migrate creates the database if needed, applies every migration newer than
// the recorded schema version (each statement is idempotent: IF NOT EXISTS),
// records the version, and reloads the region reference. Safe to run on
// every start, from several processes.
//
// cluster ("" for a single server) names a cluster of the server's
// remote_servers: every statement then runs ON CLUSTER in its cluster form
// (replicated local tables, Distributed tables under the analysts' names;
// schemas/clickhouse/cluster.go), from whichever node conn reaches.
func Migrate(ctx context.Context, conn driver.Conn, db, cluster string, regions *schemas.Regions) (*MigrationReport, error) {
	rep := &MigrationReport{Database: db}
	sv, err := conn.ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("read server version: %w", err)
	}
	major, minor := int(sv.Version.Major), int(sv.Version.Minor)
	// An ON CLUSTER statement waits for every node's DDL worker, and 18.16
	// gives up after distributed_ddl_task_timeout (180 s by default) with
	// code 159 while the statement goes on in the background — the
	// migration would then stop half-way on a busy cluster (the local
	// cluster test saw a replicated ALTER take over 3 minutes on a loaded
	// 2-core machine). Cluster migrations wait up to 10 minutes per
	// statement instead. A single server answers at once.
	timeout := 60 * time.Second
	var settings ch.Settings
	if cluster != "" {
		const ddlWait = 10 * time.Minute
		settings = ch.Settings{"distributed_ddl_task_timeout": int(ddlWait.Seconds())}
		timeout = ddlWait + time.Minute
	}
	exec := func(q string) error {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if settings != nil {
			cctx = ch.Context(cctx, ch.WithSettings(settings))
		}
		return conn.Exec(cctx, q)
	}
	// forCluster turns one statement into what runs: itself on a single
	// server, its cluster form otherwise.
	forCluster := func(stmt string) ([]string, error) {
		if cluster == "" {
			return []string{stmt}, nil
		}
		return ddl.OnCluster(stmt, db, cluster)
	}
	if cluster != "" {
		if err := checkCluster(ctx, conn, cluster); err != nil {
			return nil, err
		}
	}
	if err := exec(ddl.CreateDatabase(db, cluster)); err != nil {
		return nil, fmt.Errorf("create database %s: %w", db, err)
	}
	stmts, err := forCluster(ddl.Render(ddl.MigrationsTable, db))
	if err != nil {
		return nil, err
	}
	for _, s := range stmts {
		if err := exec(s); err != nil {
			return nil, fmt.Errorf("create %s.schema_migrations: %w", db, err)
		}
	}
	var current uint32
	row := conn.QueryRow(ctx, fmt.Sprintf("SELECT max(version) FROM %s.schema_migrations", quoteIdent(db)))
	if err := row.Scan(&current); err != nil {
		return nil, fmt.Errorf("read schema version of %s: %w", db, err)
	}
	migs, err := ddl.Migrations()
	if err != nil {
		return nil, err
	}
	for _, m := range migs {
		if uint32(m.Version) <= current {
			continue
		}
		for i, stmt := range ddl.Statements(ddl.Render(m.SQL, db)) {
			if ddl.Guarded(stmt, major, minor) {
				continue
			}
			run, err := forCluster(stmt)
			if err != nil {
				return rep, fmt.Errorf("migration %s statement %d: %w", m.Name, i+1, err)
			}
			for _, s := range run {
				if err := exec(s); err != nil && !ddl.AlreadyApplied(s, err) {
					return rep, fmt.Errorf("migration %s statement %d: %w", m.Name, i+1, err)
				}
			}
		}
		b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.schema_migrations (version, name, applied_at)", quoteIdent(db)))
		if err != nil {
			return rep, fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		if err := b.Append(uint32(m.Version), m.Name, time.Now().UTC()); err != nil {
			return rep, err
		}
		if err := b.Send(); err != nil {
			return rep, fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		rep.Applied = append(rep.Applied, m.Name)
		current = uint32(m.Version)
	}
	rep.Current = int(current)
	if regions != nil {
		n, err := LoadRegions(ctx, conn, db, regions)
		if err != nil {
			return rep, err
		}
		rep.Regions = n
	}
	return rep, nil
}

// checkCluster fails with the setting's name when the server does not know
// cluster: ON CLUSTER DDL would otherwise fail statement by statement, or
// wait for hosts that do not exist.
func checkCluster(ctx context.Context, conn driver.Conn, cluster string) error {
	rows, err := conn.Query(ctx, "SELECT DISTINCT cluster FROM system.clusters ORDER BY cluster")
	if err != nil {
		return fmt.Errorf("clickhouse.cluster %q: read system.clusters: %w", cluster, err)
	}
	defer rows.Close()
	var known []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return fmt.Errorf("clickhouse.cluster %q: read system.clusters: %w", cluster, err)
		}
		if c == cluster {
			return nil
		}
		known = append(known, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("clickhouse.cluster %q: read system.clusters: %w", cluster, err)
	}
	return fmt.Errorf("clickhouse.cluster: %q is not a cluster of this ClickHouse server's remote_servers (it knows %v); set clickhouse.cluster to one of them, or empty for a single server", cluster, known)
}

// LoadRegions writes the region reference; the newest load wins in the view.
func LoadRegions(ctx context.Context, conn driver.Conn, db string, regions *schemas.Regions) (int, error) {
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", quoteIdent(db), regionsTable.name, regionsTable.columns))
	if err != nil {
		return 0, fmt.Errorf("load regions: %w", err)
	}
	version := uint64(time.Now().UnixNano())
	all := regions.All()
	for _, r := range all {
		if err := b.Append(regionRow(r, version)...); err != nil {
			return 0, fmt.Errorf("load region %s: %w", r.Code, err)
		}
	}
	if err := b.Send(); err != nil {
		return 0, fmt.Errorf("load regions into %s.%s: %w", db, regionsTable.name, err)
	}
	return len(all), nil
}
