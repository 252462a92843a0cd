package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/app"
	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/decide"
	"github.com/epiwatch/epiwatch/schemas"
)

// replayRules is a shipped rule set given as a file, as an analyst would.
const (
	replayRules        = "../../pipeline/science/thresholds/rulesets/us-cdc-2022-community-levels.yaml"
	replayRuleSet      = "us-cdc-2022-community-levels"
	replayRuleSetVer   = "2022-02-25"
	replaySimDays      = 40
	replayFromDay      = 20 // the first day decided by the replay, counted from the simulation's start
	replaySettleWithin = 90 * time.Second
)

// TestReplayIntoSideDatabase runs the live pipeline (embedded NATS, real
// ClickHouse, decisions by the default rule set in data mode) over a
// simulated outbreak in two regions with reporting delays, then replays the
// stored events with another rule set from a file into a side database:
// the side database holds one decision per region and day from --from on,
// all of that rule set; its indicators equal the live ones (the same
// processor code); the live tables are unchanged; and a second replay gives
// the same decisions without duplicates.
func TestReplayIntoSideDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := startPipeline(t, "")
	sc := simulate.DefaultConfig()
	sc.Regions = []string{"KZ-75", "KZ-11"}
	sc.Days = replaySimDays
	sc.Start = schemas.DateOf(time.Now().UTC()).AddDays(-sc.Days)
	sc.Scale = 0.1
	sc.SeedCases = 20
	sim, err := simulate.New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var evs []schemas.Event
	if err := sim.Run(ctx, func(_ schemas.Date, day []schemas.Event) error {
		evs = append(evs, day...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s := &simulate.Sender{URL: "http://" + p.httpAddr + "/v1/events", Batch: 1000, MaxWait: 30 * time.Second}
	res, err := s.Send(ctx, evs)
	if err != nil || res.Rejected > 0 || res.Accepted != len(evs) {
		t.Fatalf("send %d events: %+v, %v", len(evs), res, err)
	}
	live := p.db.Name
	p.waitCount(t, "SELECT count() FROM "+live+".events", uint64(len(evs)), replaySettleWithin)
	waitStable(t, p.db, "SELECT count() FROM "+live+".decisions", 3*time.Second, replaySettleWithin)
	waitStable(t, p.db, "SELECT count() FROM "+live+".indicators_store", 3*time.Second, replaySettleWithin)
	liveBefore := liveSnapshot(t, p.db, live)
	if !strings.Contains(liveBefore, "decisions_store") || strings.Contains(liveBefore, "decisions_store 0 ") {
		t.Fatalf("the live pipeline made no decisions:\n%s", liveBefore)
	}

	into := live + "_replay"
	t.Cleanup(func() { _ = p.db.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+into+"`") })
	from := sc.Start.AddDays(replayFromDay)
	replayOnce := func() string {
		t.Helper()
		var out, errw strings.Builder
		args := []string{"replay", "--config", p.cfgFile, "--from", from.String(), "--rules", replayRules, "--into", into, "--work-dir", t.TempDir()}
		if code := realMain(ctx, args, &out, &errw); code != 0 {
			t.Fatalf("epiwatch %s exited with %d:\n%s\n%s", strings.Join(args, " "), code, out.String(), tailLines(errw.String(), 60))
		}
		t.Logf("replay: %s", strings.TrimSpace(out.String()))
		if !strings.Contains(errw.String(), "replay done") {
			t.Errorf("no progress on stderr:\n%s", errw.String())
		}
		return out.String()
	}
	replayOnce()

	// One decision per region and day from --from on, in order, up to the
	// last day data mode decides (the day before the newest data, or before
	// the first provisional day the decider still waits for), all by the
	// replayed rule set.
	dcfg := decide.DefaultConfig()
	dcfg.Mode = decide.ModeData
	var lastDay time.Time
	if err := p.db.Conn.QueryRow(ctx, "SELECT max(date) FROM "+into+".indicators_latest").Scan(&lastDay); err != nil {
		t.Fatal(err)
	}
	ends, err := app.DecidedThrough(ctx, p.db.Conn, into, dcfg, sc.Regions, schemas.DateOf(lastDay))
	if err != nil {
		t.Fatal(err)
	}
	var want uint64
	for _, region := range sc.Regions {
		end := ends[region]
		perRegion := uint64(max(int(end-from)+1, 0))
		want += perRegion
		q := fmt.Sprintf("SELECT count() FROM %s.decisions WHERE region = '%s' AND rule_set = '%s' AND rule_set_version = '%s' AND date >= '%s' AND date <= '%s'",
			into, region, replayRuleSet, replayRuleSetVer, from, end)
		if n := p.db.Count(t, q); n != perRegion || perRegion == 0 {
			t.Errorf("%s: %d replayed decisions of %s from %s, want %d (one per day up to %s)", region, n, replayRuleSet, from, perRegion, end)
		}
	}
	if n := p.db.Count(t, "SELECT count() FROM "+into+".decisions"); n != want {
		t.Errorf("%d replayed decisions in all, want %d: some are before --from, of another rule set or on a day still provisional", n, want)
	}
	if n := p.db.Count(t, fmt.Sprintf("SELECT count() FROM %s.decisions WHERE date = '%s' AND position(reason, 'no previous state') > 0", into, from)); n != uint64(len(sc.Regions)) {
		t.Errorf("%d regions start at the initial level on --from %s, want %d", n, from, len(sc.Regions))
	}

	// The same processor code: the rebuilt indicators are the live ones.
	indicators := "SELECT concat(region, '|', toString(date), '|', toString(version), '|', toString(cases), '|', toString(cases_7d), '|', toString(ifNull(r_mean, -1)), '|', toString(ifNull(r_q975, -1)), '|', toString(ifNull(bed_occupancy_pct, -1)), '|', toString(ifNull(positivity_7d_pct, -1)), '|', toString(computed_at)) FROM %s.indicators_latest ORDER BY region, date"
	liveInd, replayInd := strRows(t, p.db, fmt.Sprintf(indicators, live)), strRows(t, p.db, fmt.Sprintf(indicators, into))
	if len(liveInd) == 0 || strings.Join(liveInd, "\n") != strings.Join(replayInd, "\n") {
		t.Errorf("replayed indicators differ from the live ones (%d live rows, %d replayed):\n%s", len(liveInd), len(replayInd), firstDiff(liveInd, replayInd))
	}

	// The analyst's side-by-side query of --help runs and pairs every
	// replayed decision with the live one of the same day.
	cmp := strRows(t, p.db, "SELECT concat(region, toString(date), replay_rule_set, live_rule_set) FROM ("+chsink.CompareDecisionsSQL(live, into)+")")
	if uint64(len(cmp)) != want {
		t.Errorf("the comparison query returned %d rows, want %d", len(cmp), want)
	}

	decisions := "SELECT concat(decision_id, '|', region, '|', toString(date), '|', rule_set, '@', rule_set_version, '|', action, '|', clause, '|', toString(level_from), '>', toString(level_to), '|', reason, '|', toString(data_as_of), '|', arrayStringConcat(flags, ',')) FROM %s.decisions ORDER BY decision_id"
	first := strRows(t, p.db, fmt.Sprintf(decisions, into))
	firstRaw := p.db.Count(t, "SELECT count() FROM "+into+".decisions_store")

	// Again into the same name: replaced, the same decisions, no duplicates.
	replayOnce()
	second := strRows(t, p.db, fmt.Sprintf(decisions, into))
	if strings.Join(first, "\n") != strings.Join(second, "\n") {
		t.Errorf("a second replay decided differently:\n%s", firstDiff(first, second))
	}
	if raw := p.db.Count(t, "SELECT count() FROM "+into+".decisions_store"); raw != firstRaw || raw != uint64(len(second)) {
		t.Errorf("decisions_store holds %d rows after the second replay (%d after the first, %d distinct decisions): duplicates", raw, firstRaw, len(second))
	}
	if n := p.db.Count(t, "SELECT count() FROM "+into+".replay_runs WHERE rule_set = '"+replayRuleSet+"'"); n != 1 {
		t.Errorf("replay_runs has %d rows after replacing, want 1", n)
	}

	if after := liveSnapshot(t, p.db, live); after != liveBefore {
		t.Errorf("the live tables changed during the replays:\nbefore:\n%s\nafter:\n%s", liveBefore, after)
	}
}

// TestReplayRefusesLiveAndForeignDatabases: --into the live database is a
// usage error before anything is touched; a database a replay did not
// create is never dropped.
func TestReplayRefusesLiveAndForeignDatabases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startPipeline(t, "")
	var errw strings.Builder
	code := realMain(ctx, []string{"replay", "--config", p.cfgFile, "--from", "2021-01-01", "--into", p.db.Name}, io.Discard, &errw)
	if code != 2 || !strings.Contains(errw.String(), "is the live database") {
		t.Errorf("--into the live database: exit %d, %q; want 2 and a refusal", code, errw.String())
	}

	foreign := chtest.New(t)
	if err := foreign.Conn.Exec(ctx, "CREATE TABLE `"+foreign.Name+"`.keep (x UInt8) ENGINE = MergeTree ORDER BY x"); err != nil {
		t.Fatal(err)
	}
	errw.Reset()
	code = realMain(ctx, []string{"replay", "--config", p.cfgFile, "--from", "2021-01-01", "--into", foreign.Name}, io.Discard, &errw)
	if code == 0 || !strings.Contains(errw.String(), "was not created by epiwatch replay") {
		t.Errorf("--into a foreign database: exit %d, %q; want a refusal", code, errw.String())
	}
	if n := foreign.Count(t, "SELECT count() FROM system.tables WHERE database = '"+foreign.Name+"' AND name = 'keep'"); n != 1 {
		t.Errorf("the foreign database's table is gone")
	}
}

// liveSnapshot is every live table's row count and a content hash.
func liveSnapshot(t *testing.T, db *chtest.DB, name string) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []struct{ table, hash string }{
		{"events_v2_store", "cityHash64(event_id, toString(seq), payload)"},
		{"indicators_store", "cityHash64(region, toString(date), toString(version), toString(computed_at))"},
		{"decisions_store", "cityHash64(decision_id, toString(decided_at), toString(seq), reason)"},
		{"alerts_store", "cityHash64(alert_id, status, toString(seq))"},
		{"regions_store", "cityHash64(code, toString(version))"},
	} {
		var n, h uint64
		if err := db.Conn.QueryRow(context.Background(), fmt.Sprintf("SELECT count(), sum(%s) FROM %s.%s", q.hash, name, q.table)).Scan(&n, &h); err != nil {
			t.Fatalf("snapshot %s.%s: %v", name, q.table, err)
		}
		fmt.Fprintf(&b, "%s %d %x\n", q.table, n, h)
	}
	return b.String()
}

// waitStable polls a count until it is non-zero and unchanged for quiet.
func waitStable(t *testing.T, db *chtest.DB, query string, quiet, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last, since := uint64(0), time.Now()
	for time.Now().Before(deadline) {
		n := db.Count(t, query)
		if n != last {
			last, since = n, time.Now()
		} else if n > 0 && time.Since(since) >= quiet {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s did not settle within %s (last %d)", query, within, last)
}

func strRows(t *testing.T, db *chtest.DB, query string) []string {
	t.Helper()
	rows, err := db.Conn.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func firstDiff(a, b []string) string {
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("row %d:\n  %s\n  %s", i, x, y)
		}
	}
	return "(same rows)"
}
