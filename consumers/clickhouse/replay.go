package clickhouse

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/epiwatch/epiwatch/schemas"
	ddl "github.com/epiwatch/epiwatch/schemas/clickhouse"
)

// replayRunsTable is replay_runs, the table that marks a database as a
// replay's and records each completed replay; its DDL is
// schemas/clickhouse/replay_runs.sql (ddl.ReplayRuns), and
// TestColumnListsMatchTheDDL keeps this column list equal to it.
var replayRunsTable = table{"replay_runs", `started_at, finished_at, from_date, rules, rule_set, rule_set_version,
	live_database, events, events_rejected, first_seq, last_seq, indicators, decisions, seconds, epiwatch_version`}

// ReplayRun is one row of replay_runs.
type ReplayRun struct {
	StartedAt, FinishedAt time.Time
	From                  schemas.Date
	Rules                 string // the --rules argument: a shipped id or a file
	RuleSet               string
	RuleSetVersion        string
	LiveDatabase          string
	Events                uint64 // events read from the stream
	EventsRejected        uint64 // of which the processor could not apply
	FirstSeq, LastSeq     uint64 // the events-stream sequences replayed
	Indicators            uint64 // indicator records published (all versions)
	Decisions             uint64
	Seconds               float64
	Version               string
}

var dbNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// reservedDatabases are never a replay's target.
var reservedDatabases = []string{"system", "default", "information_schema", "INFORMATION_SCHEMA"}

// PrepareReplay makes db an empty replay database with the project's schema:
// it refuses db when it is the live database live, a server database
// (system, default, information_schema) or an existing database that a
// replay did not create (no replay_runs table); a database an earlier
// replay created is dropped and rebuilt, so replaying into the same name
// replaces its content. Then it applies the migrations (Migrate: the same
// tables and views as live, and the region reference) and creates
// replay_runs, which marks db as a replay's from then on. Nothing outside db
// is written.
func PrepareReplay(ctx context.Context, conn driver.Conn, db, live string, regions *schemas.Regions) (*MigrationReport, error) {
	if err := CheckReplayName(db, live); err != nil {
		return nil, err
	}
	tables, exists, err := databaseTables(ctx, conn, db)
	if err != nil {
		return nil, err
	}
	if exists {
		if len(tables) > 0 && !slices.Contains(tables, replayRunsTable.name) {
			return nil, fmt.Errorf("ClickHouse database %s exists and was not created by epiwatch replay (it has %d tables, e.g. %s, and no replay_runs); choose another --into name, or drop it yourself if it is unused", db, len(tables), tables[0])
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := conn.Exec(cctx, "DROP DATABASE IF EXISTS "+quoteIdent(db))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("drop the earlier replay database %s: %w", db, err)
		}
	}
	rep, err := Migrate(ctx, conn, db, "", regions)
	if err != nil {
		return rep, fmt.Errorf("create replay database %s: %w", db, err)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := conn.Exec(cctx, ddl.Render(ddl.ReplayRuns(), db)); err != nil {
		return rep, fmt.Errorf("create %s.%s: %w", db, replayRunsTable.name, err)
	}
	return rep, nil
}

// CheckReplayName refuses a replay database name that is the live database
// live, a server database or not a plain identifier.
func CheckReplayName(db, live string) error {
	switch {
	case !dbNameRe.MatchString(db):
		return fmt.Errorf("replay database name %q: use letters, digits and _ (not first), at most 63 characters, e.g. replay_autumn2020", db)
	case db == live:
		return fmt.Errorf("replay database %q is the live database (clickhouse.database); choose another name, e.g. %s_replay", db, live)
	case slices.Contains(reservedDatabases, db):
		return fmt.Errorf("replay database %q is a ClickHouse server database; choose another name, e.g. replay_autumn2020", db)
	}
	return nil
}

// databaseTables lists db's tables and views; exists is false when there is
// no such database.
func databaseTables(ctx context.Context, conn driver.Conn, db string) (tables []string, exists bool, err error) {
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var n uint64
	if err := conn.QueryRow(qctx, "SELECT count() FROM system.databases WHERE name = ?", db).Scan(&n); err != nil {
		return nil, false, fmt.Errorf("look up database %s: %w", db, err)
	}
	if n == 0 {
		return nil, false, nil
	}
	rows, err := conn.Query(qctx, "SELECT name FROM system.tables WHERE database = ? ORDER BY name", db)
	if err != nil {
		return nil, true, fmt.Errorf("list the tables of %s: %w", db, err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, true, fmt.Errorf("list the tables of %s: %w", db, err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		return nil, true, fmt.Errorf("list the tables of %s: %w", db, err)
	}
	return tables, true, nil
}

// RecordReplay appends run to db.replay_runs.
func RecordReplay(ctx context.Context, conn driver.Conn, db string, run ReplayRun) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := conn.PrepareBatch(cctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", quoteIdent(db), replayRunsTable.name, replayRunsTable.columns))
	if err != nil {
		return fmt.Errorf("record the replay in %s.%s: %w", db, replayRunsTable.name, err)
	}
	if err := b.Append(run.StartedAt.UTC(), run.FinishedAt.UTC(), run.From.Time(), run.Rules, run.RuleSet, run.RuleSetVersion, run.LiveDatabase,
		run.Events, run.EventsRejected, run.FirstSeq, run.LastSeq, run.Indicators, run.Decisions, run.Seconds, run.Version); err != nil {
		_ = b.Abort()
		return fmt.Errorf("record the replay in %s.%s: %w", db, replayRunsTable.name, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record the replay in %s.%s: %w", db, replayRunsTable.name, err)
	}
	return nil
}

// CompareDecisionsSQL is the analyst's side-by-side query: every replayed
// decision (one per region and data day from the replay's first day on)
// with the live decision of the same region and day beside it (empty when
// live decided nothing that day). It runs on ClickHouse 18.16 and current
// releases: ANY LEFT JOIN of two subqueries with distinct column names, no
// qualified names across the join (which 18.16 resolves poorly).
func CompareDecisionsSQL(live, replayDB string) string {
	return fmt.Sprintf(`SELECT region, date, replay_rule_set, replay_action, replay_level, live_rule_set, live_action, live_level
FROM
(
    SELECT region, date, rule_set AS replay_rule_set, action AS replay_action, level_to_name AS replay_level
    FROM %s.decisions
)
ANY LEFT JOIN
(
    SELECT region, date, rule_set AS live_rule_set, action AS live_action, level_to_name AS live_level
    FROM %s.decisions
) USING (region, date)
ORDER BY region, date`, quoteIdent(replayDB), quoteIdent(live))
}
