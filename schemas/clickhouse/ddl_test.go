package clickhouse

import (
	"errors"
	"strings"
	"testing"
)

func TestGuarded(t *testing.T) {
	for _, tc := range []struct {
		stmt         string
		major, minor int
		want         bool
	}{
		{"-- requires: 22.2\nALTER TABLE x", 18, 16, true},
		{"-- requires: 22.2\nALTER TABLE x", 22, 2, false},
		{"-- requires: 22.2\nALTER TABLE x", 26, 5, false},
		{"-- requires: 22.2\nALTER TABLE x", 22, 1, true},
		{"CREATE TABLE x", 18, 16, false},
	} {
		if got := Guarded(tc.stmt, tc.major, tc.minor); got != tc.want {
			t.Errorf("Guarded(%q, %d.%d) = %v", tc.stmt, tc.major, tc.minor, got)
		}
	}
}

func TestAlreadyApplied(t *testing.T) {
	exists := errors.New("code: 44, message: Cannot add column flag_reasons: column with this name already exists")
	tests := []struct {
		name string
		stmt string
		err  error
		want bool
	}{
		{"add column that exists", "ALTER TABLE db.t ADD COLUMN c Array(String) AFTER flags", exists, true},
		{"after comments", "-- why\n-- more\nalter table db.t add column c String", exists, true},
		{"current ClickHouse's name for it", "ALTER TABLE db.t ADD COLUMN c String", errors.New("DUPLICATE_COLUMN"), true},
		{"no error", "ALTER TABLE db.t ADD COLUMN c String", nil, false},
		{"other error", "ALTER TABLE db.t ADD COLUMN c String", errors.New("code: 60, table doesn't exist"), false},
		{"not an ADD COLUMN", "CREATE TABLE db.t (x UInt8) ENGINE = Log", errors.New("table already exists"), false},
		{"drop column", "ALTER TABLE db.t DROP COLUMN c", exists, false},
	}
	for _, tc := range tests {
		if got := AlreadyApplied(tc.stmt, tc.err); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReplayRuns: replay_runs.sql is one statement on {db}, and not a
// migration (live databases must never get the table that marks a replay's).
func TestReplayRuns(t *testing.T) {
	stmts := Statements(ReplayRuns())
	if len(stmts) != 1 || !strings.Contains(stmts[0], "CREATE TABLE IF NOT EXISTS {db}.replay_runs") {
		t.Fatalf("replay_runs.sql: %q", stmts)
	}
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migs {
		if strings.Contains(m.SQL, "replay_runs") {
			t.Errorf("migration %s mentions replay_runs", m.Name)
		}
	}
}
