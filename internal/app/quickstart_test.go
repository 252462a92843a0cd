package app

import (
	"context"
	"fmt"
	"maps"
	"testing"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	"github.com/epiwatch/epiwatch/pipeline/decide"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestQuickStartQueries: what the quick start waits for, read through the
// shipped queries from rows of a real ClickHouse (18.16 in CI): events per
// simulation id prefix, the day each region is decided through, and the
// regions decided that far.
func TestQuickStartQueries(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	if _, err := chsink.Migrate(ctx, db.Conn, db.Name, "", schemas.DefaultRegions()); err != nil {
		t.Fatal(err)
	}
	exec := func(sql string) {
		t.Helper()
		if err := db.Conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	for i, id := range []string{"sim-7-a", "sim-7-b", "sim-77-a", "sim--7-a", "hosp-sim-7-a"} {
		exec(fmt.Sprintf("INSERT INTO events_v2_store (event_id, type, region, event_date, source, ingested_at, seq, payload) "+
			"SELECT '%s', 'case', 'KZ-75', toDate('2021-07-01'), 's', toDateTime('2021-07-01 10:00:00', 'UTC'), %d, '{}'", id, i+1))
	}
	for prefix, want := range map[string]uint64{"sim-7-": 2, "sim-77-": 1, "sim--7-": 1, "sim-8-": 0} {
		if n, err := simulatedEvents(ctx, db.Conn, db.Name, prefix); err != nil || n != want {
			t.Errorf("events with id prefix %s: %d (%v), want %d", prefix, n, err, want)
		}
	}

	// KZ-75 is complete through day 20; KZ-11's day 18 is provisional.
	for _, r := range []struct {
		region, date string
		provisional  int
	}{{"KZ-75", "2021-07-19", 0}, {"KZ-75", "2021-07-20", 0}, {"KZ-11", "2021-07-17", 0}, {"KZ-11", "2021-07-18", 1}, {"KZ-11", "2021-07-19", 0}} {
		exec(fmt.Sprintf("INSERT INTO indicators_store (region, date, version, provisional, stale_feeds, computed_at) "+
			"SELECT '%s', toDate('%s'), 1, %d, emptyArrayString(), toDateTime('2021-07-21 10:00:00', 'UTC')", r.region, r.date, r.provisional))
	}
	cfg := decide.DefaultConfig()
	cfg.Mode = decide.ModeData
	regions := []string{"KZ-75", "KZ-11", "KZ-35"}
	through, err := DecidedThrough(ctx, db.Conn, db.Name, cfg, regions, schemas.MustDate("2021-07-20"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]schemas.Date{"KZ-75": schemas.MustDate("2021-07-19"), "KZ-11": schemas.MustDate("2021-07-17"), "KZ-35": schemas.MustDate("2021-07-19")}
	if !maps.Equal(through, want) {
		t.Fatalf("decided through %v, want %v", through, want)
	}

	for _, d := range []struct{ region, date string }{{"KZ-75", "2021-07-18"}, {"KZ-75", "2021-07-19"}, {"KZ-11", "2021-07-17"}} {
		exec(fmt.Sprintf("INSERT INTO decisions_store (decision_id, region, date, decided_at, seq) "+
			"SELECT '%[1]s:%[2]s', '%[1]s', toDate('%[2]s'), toDateTime('2021-07-21 10:00:00', 'UTC'), 1", d.region, d.date))
	}
	if n, err := decidedRegions(ctx, db.Conn, db.Name, through); err != nil || n != 2 {
		t.Errorf("%d regions decided through their day (%v), want 2 (KZ-75 and KZ-11, not KZ-35)", n, err)
	}
}
