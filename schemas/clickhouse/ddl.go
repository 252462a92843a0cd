// Package clickhouse holds epiwatch's ClickHouse DDL as embedded, append-only
// migration files (NNN_name.sql) and the shipped analyst queries. Every
// statement must run on ClickHouse 18.16 and on current releases; the compat
// tests run them on both.
package clickhouse

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

//go:embed *.sql queries/*.sql
var files embed.FS

// DBPlaceholder stands for the target database in the .sql files; Render
// replaces it, so one file serves the production database and every test's
// throw-away one.
const DBPlaceholder = "{db}"

// MigrationsTable records which migration files a database has (applied by
// consumers/clickhouse.Migrate before the files themselves).
const MigrationsTable = `CREATE TABLE IF NOT EXISTS {db}.schema_migrations
(version UInt32, name String, applied_at DateTime('UTC'))
ENGINE = ReplacingMergeTree ORDER BY version`

// Migration is one numbered DDL file.
type Migration struct {
	Version int
	Name    string // file name
	SQL     string
}

// Migrations returns the migration files in version order.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(files, "[0-9][0-9][0-9]_*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Migration
	for _, n := range names {
		v, err := strconv.Atoi(n[:3])
		if err != nil {
			return nil, fmt.Errorf("migration %s: bad version prefix", n)
		}
		if len(out) > 0 && out[len(out)-1].Version == v {
			return nil, fmt.Errorf("migration %s: version %d used twice", n, v)
		}
		b, _ := files.ReadFile(n)
		out = append(out, Migration{Version: v, Name: n, SQL: string(b)})
	}
	return out, nil
}

// Query is one shipped analyst query (queries/*.sql).
type Query struct {
	Name string
	SQL  string
}

// Queries returns the shipped queries, sorted by name.
func Queries() ([]Query, error) {
	names, err := fs.Glob(files, "queries/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Query
	for _, n := range names {
		b, _ := files.ReadFile(n)
		out = append(out, Query{Name: path.Base(n), SQL: string(b)})
	}
	return out, nil
}

// Render substitutes the database name for {db}.
func Render(sql, db string) string { return strings.ReplaceAll(sql, DBPlaceholder, quoteIdent(db)) }

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// Statements splits a file into statements on semicolons outside quotes and
// comments, dropping comment-only pieces.
func Statements(sql string) []string {
	var out []string
	var b strings.Builder
	inStr, inLine := byte(0), false
	flush := func() {
		s := strings.TrimSpace(b.String())
		b.Reset()
		if s != "" && strings.TrimSpace(stripComments(s)) != "" {
			out = append(out, s)
		}
	}
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case inLine:
			if c == '\n' {
				inLine = false
			}
		case inStr != 0:
			if c == '\\' && i+1 < len(sql) {
				b.WriteByte(c)
				i++
				c = sql[i]
			} else if c == inStr {
				inStr = 0
			}
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			inLine = true
		case c == '\'' || c == '"' || c == '`':
			inStr = c
		case c == ';':
			flush()
			continue
		}
		b.WriteByte(c)
	}
	flush()
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// ReplayRuns returns the DDL of replay_runs, the table that marks a
// database as a replay's and records each completed replay
// (replay_runs.sql; {db} to be replaced). Only replay databases have it, so
// it is not a numbered migration.
func ReplayRuns() string {
	b, _ := files.ReadFile("replay_runs.sql")
	return string(b)
}

// AnalystRole returns the SQL that creates the read-only analyst role and
// user on current ClickHouse ({db} and {analyst_password} to be replaced).
func AnalystRole() string {
	b, _ := files.ReadFile("analyst_role.sql")
	return string(b)
}

// requiresRe matches a statement's guard comment: "-- requires: 22.2" runs the
// statement only on servers of at least that version, so features newer than
// 18.16 can be used in production without breaking the Debian server.
var requiresRe = regexp.MustCompile(`(?m)^\s*--\s*requires:\s*(\d+)\.(\d+)`)

// Guarded reports whether stmt carries a version guard that a server of
// version major.minor fails (Migrate and the compat tests skip it there).
func Guarded(stmt string, major, minor int) bool {
	m := requiresRe.FindStringSubmatch(stmt)
	if m == nil {
		return false
	}
	wm, _ := strconv.Atoi(m[1])
	wn, _ := strconv.Atoi(m[2])
	return !AtLeast(major, minor, wm, wn)
}

// addColumnRe matches an ALTER TABLE … ADD COLUMN statement (comments first
// allowed).
var addColumnRe = regexp.MustCompile(`(?is)^(\s*--[^\n]*\n)*\s*ALTER\s+TABLE\s+\S+\s+ADD\s+COLUMN\s`)

// AlreadyApplied reports whether err, returned by running stmt, only says
// that stmt's effect is already there: an ADD COLUMN of a column that
// exists. ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS, so this is how a
// migration that stopped half-way (or the compat tests' second pass) runs
// again. The message is matched, not the error code, so that it works
// through clickhouse-go and chDB alike.
func AlreadyApplied(stmt string, err error) bool {
	if err == nil || !addColumnRe.MatchString(stmt) {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "already exists") || strings.Contains(msg, "DUPLICATE_COLUMN")
}

// AtLeast compares major.minor versions.
func AtLeast(major, minor, wantMajor, wantMinor int) bool {
	return major > wantMajor || (major == wantMajor && minor >= wantMinor)
}
