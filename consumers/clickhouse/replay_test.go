package clickhouse_test

import (
	"context"
	"strings"
	"testing"
	"time"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestPrepareReplay: a replay database is created with the live schema and
// replay_runs; preparing it again replaces its content; the live database,
// server databases, bad names and databases a replay did not create are
// refused and left alone.
func TestPrepareReplay(t *testing.T) {
	ctx := context.Background()
	live := chtest.New(t)
	conn := live.Conn
	into := live.Name + "_r"
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+into+"`") })

	for _, bad := range []struct{ name, want string }{
		{live.Name, "is the live database"},
		{"system", "server database"},
		{"default", "server database"},
		{"x-y", "letters, digits"},
		{"", "letters, digits"},
	} {
		if _, err := chsink.PrepareReplay(ctx, conn, bad.name, live.Name, schemas.DefaultRegions()); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("PrepareReplay(%q): %v, want an error saying %q", bad.name, err, bad.want)
		}
	}
	// The live database (a table in it) is refused as a target even under a
	// name that is not the configured live one: it was not made by a replay.
	if err := conn.Exec(ctx, "CREATE TABLE `"+live.Name+"`.keep (x UInt8) ENGINE = MergeTree ORDER BY x"); err != nil {
		t.Fatal(err)
	}
	if _, err := chsink.PrepareReplay(ctx, conn, live.Name, "epiwatch", schemas.DefaultRegions()); err == nil || !strings.Contains(err.Error(), "was not created by epiwatch replay") {
		t.Errorf("PrepareReplay of a foreign database: %v", err)
	}
	if n := live.Count(t, "SELECT count() FROM system.tables WHERE database = '"+live.Name+"' AND name = 'keep'"); n != 1 {
		t.Fatalf("the foreign database lost its table")
	}

	if _, err := chsink.PrepareReplay(ctx, conn, into, live.Name, schemas.DefaultRegions()); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"decisions", "decisions_store", "indicators_latest", "replay_runs", "regions"} {
		if n := live.Count(t, "SELECT count() FROM system.tables WHERE database = '"+into+"' AND name = '"+table+"'"); n != 1 {
			t.Errorf("replay database lacks %s", table)
		}
	}
	run := chsink.ReplayRun{StartedAt: time.Now(), FinishedAt: time.Now(), From: schemas.MustDate("2020-09-01"), Rules: "x.yaml",
		RuleSet: "x", RuleSetVersion: "1", LiveDatabase: live.Name, Events: 10, LastSeq: 10, Seconds: 1.5, Version: "test"}
	if err := chsink.RecordReplay(ctx, conn, into, run); err != nil {
		t.Fatal(err)
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO `"+into+"`.decisions_store (decision_id, region, date, seq)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("a", "KZ-75", schemas.MustDate("2020-09-01").Time(), uint64(1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	// Again: the earlier replay's content is gone.
	if _, err := chsink.PrepareReplay(ctx, conn, into, live.Name, schemas.DefaultRegions()); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"decisions_store", "replay_runs"} {
		if n := live.Count(t, "SELECT count() FROM `"+into+"`."+table); n != 0 {
			t.Errorf("%s.%s holds %d rows after preparing again, want 0", into, table, n)
		}
	}
	if n := live.Count(t, "SELECT count() FROM `"+into+"`.regions"); n == 0 {
		t.Errorf("the replay database has no region reference")
	}
}
