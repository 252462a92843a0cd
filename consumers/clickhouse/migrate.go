package clickhouse

import (
	"context"
	"fmt"
	"time"

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
func Migrate(ctx context.Context, conn driver.Conn, db string, regions *schemas.Regions) (*MigrationReport, error) {
	rep := &MigrationReport{Database: db}
	sv, err := conn.ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("read server version: %w", err)
	}
	major, minor := int(sv.Version.Major), int(sv.Version.Minor)
	exec := func(q string) error {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		return conn.Exec(cctx, q)
	}
	if err := exec("CREATE DATABASE IF NOT EXISTS " + quoteIdent(db)); err != nil {
		return nil, fmt.Errorf("create database %s: %w", db, err)
	}
	if err := exec(ddl.Render(ddl.MigrationsTable, db)); err != nil {
		return nil, fmt.Errorf("create %s.schema_migrations: %w", db, err)
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
			if err := exec(stmt); err != nil && !ddl.AlreadyApplied(stmt, err) {
				return rep, fmt.Errorf("migration %s statement %d: %w", m.Name, i+1, err)
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
