// Package compat runs epiwatch's DDL and shipped queries on a ClickHouse
// engine, so one test can prove them on the Debian 18.16 server (through
// clickhouse-go) and on the current engine (in-process through chDB, build
// tag chdb). The two differ in real ways; this is what keeps the schema honest
// for production users.
package compat

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	ddl "github.com/epiwatch/epiwatch/schemas/clickhouse"
)

// Engine is a ClickHouse that runs SQL.
type Engine interface {
	// Name says which engine it is, for messages.
	Name() string
	// Version is the engine's major and minor version.
	Version(ctx context.Context) (major, minor int, err error)
	// Exec runs a statement that returns no rows.
	Exec(ctx context.Context, sql string) error
	// Query runs a query and returns its column names and row count.
	Query(ctx context.Context, sql string) (columns []string, rows int, err error)
}

// ParseVersion reads "major.minor…" as returned by SELECT version().
func ParseVersion(v string) (int, int, error) {
	parts := strings.SplitN(strings.TrimSpace(v), ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("unexpected version %q", v)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("unexpected version %q", v)
	}
	return major, minor, nil
}

var leadingComments = regexp.MustCompile(`^(\s*--[^\n]*\n)+\s*`)

// Step is one statement that was run (or skipped by its version guard).
type Step struct {
	File      string
	Index     int
	Statement string
	Skipped   bool
}

// ApplySchema creates db and runs the migrations table and every statement
// of every migration file on e, in order, like `epiwatch migrate` does.
func ApplySchema(ctx context.Context, e Engine, db string) ([]Step, error) {
	major, minor, err := e.Version(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: version: %w", e.Name(), err)
	}
	var steps []Step
	run := func(file string, i int, stmt string) error {
		st := Step{File: file, Index: i, Statement: stmt, Skipped: ddl.Guarded(stmt, major, minor)}
		steps = append(steps, st)
		if st.Skipped {
			return nil
		}
		if err := e.Exec(ctx, stmt); err != nil && !ddl.AlreadyApplied(stmt, err) {
			return fmt.Errorf("%s %d.%d: %s statement %d:\n%s\n: %w", e.Name(), major, minor, file, i, stmt, err)
		}
		return nil
	}
	if err := run("(database)", 1, "CREATE DATABASE IF NOT EXISTS `"+db+"`"); err != nil {
		return steps, err
	}
	if err := run("(schema_migrations)", 1, ddl.Render(ddl.MigrationsTable, db)); err != nil {
		return steps, err
	}
	migs, err := ddl.Migrations()
	if err != nil {
		return steps, err
	}
	for _, m := range migs {
		for i, stmt := range ddl.Statements(ddl.Render(m.SQL, db)) {
			if err := run(m.Name, i+1, stmt); err != nil {
				return steps, err
			}
		}
	}
	return steps, nil
}

// RunStatements runs every statement of a SQL text (with {db} placeholders).
func RunStatements(ctx context.Context, e Engine, db, name, sql string) error {
	for i, stmt := range ddl.Statements(ddl.Render(sql, db)) {
		// clickhouse-go recognises an INSERT by its first keyword; a leading
		// comment makes it wait for a data block that never comes.
		stmt = leadingComments.ReplaceAllString(stmt, "")
		if err := e.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %s statement %d:\n%s\n: %w", e.Name(), name, i+1, stmt, err)
		}
	}
	return nil
}
