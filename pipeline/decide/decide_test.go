package decide

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Clause names of kz-2020-plan (pipeline/science/thresholds/rulesets/kz-2020-plan.yaml).
const (
	clause1a   = "plan 1a: R > 1.3 and occupancy 50–70 %"
	clause2    = "plan 2: no criterion met, keep"
	clause3    = "plan 3: R ≤ 1 and occupancy ≤ 50 %"
	clauseMiss = thresholds.ClauseMissingInput
)

// TestDataMode walks one region through a rise and a fall in data mode: one
// level up per strengthen, eases only after MinDaysBeforeEase (3) data days
// at a level and one step at a time, missing beds and a flagged day keep,
// and a provisional day waits for its complete version.
func TestDataMode(t *testing.T) {
	srv := streamtest.New(t)
	const r = "KZ-75"
	cases := []struct {
		in         schemas.Indicator
		action     string
		from, to   int
		clause     string
		reasonPart string
	}{
		{ind(r, 0, 10, 1.4, 60), "strengthen", 1, 2, clause1a, "L1 → L2"},
		{ind(r, 1, 11, 1.4, 60), "strengthen", 2, 3, clause1a, "L2 → L3"},
		{ind(r, 2, 12, 1.4, -1), "keep", 3, 3, clauseMiss, "bed_occupancy_pct"},
		{ind(r, 3, 13, 1.4, 60), "strengthen", 3, 4, clause1a, "L3 → L4"},
		{ind(r, 4, 14, 0.8, 40), "ease", 4, 4, clause3, "ease held: 1 of 3 days"},
		{ind(r, 5, 15, 0.8, 40), "ease", 4, 4, clause3, "ease held: 2 of 3 days"},
		{ind(r, 6, 16, 0.8, 40), "ease", 4, 3, clause3, "L4 → L3 after 3 days"},
		{ind(r, 7, 17, 0.8, 40), "ease", 3, 3, clause3, "ease held: 1 of 3"},
		{ind(r, 8, 18, 0.8, 40), "ease", 3, 3, clause3, "ease held: 2 of 3"},
		{ind(r, 9, 19, 0.8, 40), "ease", 3, 2, clause3, "L3 → L2"},
		{ind(r, 10, 20, 1.1, 60), "keep", 2, 2, clause2, "stays at L2"},
		{ind(r, 11, 21, 0.8, 40), "ease", 2, 2, clause3, "ease held: 2 of 3"},
		{ind(r, 12, 22, 0.8, 40), "ease", 2, 1, clause3, "L2 → L1"},
		// beds_stale is the processor's name of stale_beds, whose effect in
		// kz-2020-plan is no_ease: the ease becomes keep.
		{withFlags(ind(r, 13, 23, 0.8, 40), "beds_stale"), "keep", 1, 1, clause3, "stale_beds"},
	}
	d, reg := newDecider(t, srv.JS, testConfig(ModeData), nil, time.Now)
	run := start(t, d)

	var ins []schemas.Indicator
	for _, c := range cases {
		ins = append(ins, c.in)
	}
	// Day 14 is provisional (and so is 15): day 14 must wait.
	ins = append(ins, provisional(ind(r, 14, 24, 0.8, 40)), provisional(ind(r, 15, 25, 0.8, 40)))
	publish(t, srv.JS, "", ins...)

	ds := waitDecisions(t, srv.JS, len(cases))
	if len(ds) != len(cases) {
		t.Fatalf("got %d decisions, want %d (day 14 is provisional):%s", len(ds), len(cases), summary(ds))
	}
	for i, c := range cases {
		got := ds[i]
		t.Run(c.in.Date.String(), func(t *testing.T) {
			wantID := r + ":" + c.in.Date.String() + ":kz-2020-plan@1"
			if got.DecisionID != wantID || got.Date != c.in.Date {
				t.Errorf("decision %s on %s, want %s", got.DecisionID, got.Date, wantID)
			}
			if got.Action != c.action || got.LevelFrom != c.from || got.LevelTo != c.to || got.Clause != c.clause {
				t.Errorf("got %s %d→%d %q, want %s %d→%d %q", got.Action, got.LevelFrom, got.LevelTo, got.Clause, c.action, c.from, c.to, c.clause)
			}
			if !strings.Contains(got.Reason, c.reasonPart) {
				t.Errorf("reason %q does not mention %q", got.Reason, c.reasonPart)
			}
			if got.LevelFromName != "L"+string(rune('0'+c.from)) || got.LevelToName != "L"+string(rune('0'+c.to)) {
				t.Errorf("level names %q → %q", got.LevelFromName, got.LevelToName)
			}
			if got.RuleSet != "kz-2020-plan" || got.RuleSetVersion != "1" || got.RMethod != "cori/mean" || got.RegionName != "Almaty" {
				t.Errorf("rule set %s@%s, r_method %s, region name %q", got.RuleSet, got.RuleSetVersion, got.RMethod, got.RegionName)
			}
			if got.RMean == nil || *got.RMean != *c.in.RMean || got.RQ025 == nil || got.RQ975 == nil {
				t.Errorf("R not recorded: %v %v %v", got.RMean, got.RQ025, got.RQ975)
			}
			if (c.in.BedOccupancyPct == nil) != (got.BedOccupancyPct == nil) {
				t.Errorf("bed occupancy %v, indicator had %v", got.BedOccupancyPct, c.in.BedOccupancyPct)
			}
			if got.DecidedAt.IsZero() || got.DataAsOf < got.Date {
				t.Errorf("decided_at %v, data_as_of %s", got.DecidedAt, got.DataAsOf)
			}
		})
	}
	if f := ds[13].Flags; len(f) != 1 || f[0] != schemas.FlagStaleBeds {
		t.Errorf("day 13 flags %v, want [stale_beds]", f)
	}
	if p := audit(ds); len(p) > 0 {
		t.Errorf("audit: %v", p)
	}

	// The complete version of day 14 arrives: now it is decided (at the
	// mildest level already: ease stays at L1).
	done := ind(r, 14, 26, 0.8, 40)
	publish(t, srv.JS, "", done)
	ds = waitDecisions(t, srv.JS, len(cases)+1)
	if len(ds) != len(cases)+1 || ds[len(ds)-1].Date != day(14) || ds[len(ds)-1].Action != "ease" || ds[len(ds)-1].LevelTo != 1 {
		t.Fatalf("after the complete day 14:%s", summary(ds))
	}

	// Shutdown is cancel + drain: Run returns nil and leaves no claim.
	if err := run.stop(t); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	rec := readLevel(t, srv.JS, r)
	if rec.Pending != nil || rec.Level != 1 || rec.LastDay != day(14) || rec.LastDecisionID != r+":2021-07-15:kz-2020-plan@1" {
		t.Errorf("level record after shutdown: %+v", rec)
	}
	// Level 1 entered on data day 12 (the dwell clock counts data days).
	if !rec.Since.Equal(day(12).Time()) {
		t.Errorf("since %v, want %v", rec.Since, day(12).Time())
	}

	// Metrics: the gauge shows the level, counters count actions and steps,
	// names pass promlint.
	if v := gauge(t, reg, "epiwatch_region_restriction_level", r); v != 1 {
		t.Errorf("level gauge %v, want 1", v)
	}
	if v := gauge(t, reg, "epiwatch_level_changes_total", r); v != float64(levelChanges(ds, r)) || v != 6 {
		t.Errorf("level changes %v, want 6", v)
	}
	if v := gauge(t, reg, "epiwatch_decisions_total", "strengthen"); v != 3 {
		t.Errorf("strengthen decisions %v, want 3", v)
	}
	lint(t, reg)
}

// TestStaleFeedWaitedOut: in data mode a day whose case feed has not
// reported is waited for like a provisional day — even with
// use_provisional — and, if its cases never come, decided as keep saying
// which feed was missing: never an ease on missing data.
func TestStaleFeedWaitedOut(t *testing.T) {
	srv := streamtest.New(t)
	cfg := testConfig(ModeData)
	cfg.UseProvisional = true
	d, _ := newDecider(t, srv.JS, cfg, nil, time.Now)
	start(t, d)
	const r = "KZ-11"
	stale := ind(r, 1, 2, 0.7, 30) // the plan would ease
	stale.StaleFeeds = []string{"case"}
	stale.Flags, stale.FlagReasons = []string{"stale_feed"}, []string{"stale_feed: case feed reported through 2021-07-01"}
	publish(t, srv.JS, "", ind(r, 0, 1, 1.4, 60), stale, ind(r, 2, 3, 0.7, 30), ind(r, 3, 4, 0.7, 30))
	time.Sleep(400 * time.Millisecond)
	if ds := decisions(t, srv.JS); len(ds) != 1 {
		t.Fatalf("got %d decisions, want day 0 only while day 1 waits:%s", len(ds), summary(ds))
	}
	publish(t, srv.JS, "", ind(r, 4, 5, 0.7, 30), ind(r, 5, 6, 0.7, 30))
	ds := waitDecisions(t, srv.JS, 5)
	got := ds[1]
	if got.Date != day(1) || got.Action != "keep" || got.Clause != ClauseProvisionalInput ||
		!strings.Contains(got.Reason, "case feed not reported") || !strings.Contains(got.Reason, "case feed reported through 2021-07-01") {
		t.Errorf("the stale day: %s %s %q %q", got.Date, got.Action, got.Clause, got.Reason)
	}
}

// TestProvisionalWaitedOut: a day that stays provisional while the data grow
// max_staleness days newer is decided as keep, with the reason, and later
// days follow; with use_provisional it is decided on its data.
func TestProvisionalWaitedOut(t *testing.T) {
	for _, useProv := range []bool{false, true} {
		t.Run(map[bool]string{false: "complete days only", true: "use_provisional"}[useProv], func(t *testing.T) {
			srv := streamtest.New(t)
			cfg := testConfig(ModeData)
			cfg.UseProvisional = useProv
			d, _ := newDecider(t, srv.JS, cfg, nil, time.Now)
			start(t, d)
			const r = "KZ-11"
			publish(t, srv.JS, "", provisional(ind(r, 0, 1, 1.4, 60)))
			publish(t, srv.JS, "", ind(r, 1, 2, 1.4, 60), ind(r, 2, 3, 1.4, 60), ind(r, 3, 4, 1.4, 60))
			want := 3 // days 0-2 with use_provisional
			if !useProv {
				want = 0 // day 0 waits: data only 3 days newer (max_staleness 3)
			}
			time.Sleep(400 * time.Millisecond)
			if ds := decisions(t, srv.JS); len(ds) != want {
				t.Fatalf("got %d decisions, want %d:%s", len(ds), want, summary(ds))
			}
			publish(t, srv.JS, "", ind(r, 4, 5, 1.4, 60))
			ds := waitDecisions(t, srv.JS, 4)
			if len(ds) != 4 {
				t.Fatalf("got %d decisions, want 4:%s", len(ds), summary(ds))
			}
			first := ds[0]
			if useProv {
				if first.Action != "strengthen" || !containsStr(first.Flags, schemas.FlagProvisional) {
					t.Errorf("day 0 with use_provisional: %s flags %v", first.Action, first.Flags)
				}
			} else if first.Action != "keep" || first.Clause != ClauseProvisionalInput || !strings.Contains(first.Reason, "still incomplete (provisional") {
				t.Errorf("day 0 waited out: %s %q %q", first.Action, first.Clause, first.Reason)
			}
			if p := audit(ds); len(p) > 0 {
				t.Errorf("audit: %v", p)
			}
		})
	}
}

// TestScheduleMode: with an injected clock, nothing happens before 09:00
// Almaty; at 09:00 every region is decided once (on its latest complete
// day, or keep for stale or absent data); later rounds the same day and
// DecideNow add nothing; the next day decides the new complete day.
func TestScheduleMode(t *testing.T) {
	srv := streamtest.New(t)
	all := schemas.DefaultRegions()
	var list []schemas.Region
	for _, c := range []string{"KZ-75", "KZ-11", "KZ-71"} {
		rg, ok := all.Get(c)
		if !ok {
			t.Fatalf("region %s not in the reference", c)
		}
		list = append(list, rg)
	}
	regions, err := schemas.NewRegions(list)
	if err != nil {
		t.Fatal(err)
	}
	almaty, err := time.LoadLocation("Asia/Almaty")
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{}
	clock.Set(time.Date(2021, 7, 10, 8, 59, 0, 0, almaty))

	// KZ-75: complete up to 07-08 (day 7); 07-09 and 07-10 are provisional.
	// KZ-11: newest data 07-05 (day 4): 5 days old, stale.
	// KZ-71: nothing.
	var ins []schemas.Indicator
	for n := 0; n <= 7; n++ {
		ins = append(ins, ind("KZ-75", n, uint64(n+1), 1.4, 60))
	}
	ins = append(ins, provisional(ind("KZ-75", 8, 9, 1.4, 60)), provisional(ind("KZ-75", 9, 10, 1.4, 60)))
	for n := 0; n <= 4; n++ {
		ins = append(ins, ind("KZ-11", n, uint64(20+n), 0.8, 30))
	}
	publish(t, srv.JS, "", ins...)

	d, _ := newDecider(t, srv.JS, testConfig(ModeSchedule), regions, clock.Now)
	start(t, d)
	time.Sleep(300 * time.Millisecond)
	if ds := decisions(t, srv.JS); len(ds) != 0 {
		t.Fatalf("decisions before 09:00:%s", summary(ds))
	}

	clock.Set(time.Date(2021, 7, 10, 9, 0, 5, 0, almaty))
	ds := waitDecisions(t, srv.JS, 3)
	if len(ds) != 3 {
		t.Fatalf("want one decision per region, got:%s", summary(ds))
	}
	byRegion := map[string]schemas.Decision{}
	for _, x := range ds {
		byRegion[x.Region] = x
	}
	tests := []struct {
		region, id, action, clause, reason string
		date                               schemas.Date
		to                                 int
	}{
		{"KZ-75", "KZ-75:2021-07-08:kz-2020-plan@1", "strengthen", clause1a, "L1 → L2", day(7), 2},
		{"KZ-11", "KZ-11:2021-07-10:kz-2020-plan@1:stale", "keep", ClauseStaleInput, "stale input: newest data is 5 days old", day(9), 1},
		{"KZ-71", "KZ-71:2021-07-10:kz-2020-plan@1:stale", "keep", ClauseStaleInput, "stale input: no indicators for KZ-71", day(9), 1},
	}
	for _, tc := range tests {
		got, ok := byRegion[tc.region]
		if !ok {
			t.Errorf("%s: no decision", tc.region)
			continue
		}
		if got.DecisionID != tc.id || got.Action != tc.action || got.Clause != tc.clause || got.Date != tc.date || got.LevelTo != tc.to || !strings.Contains(got.Reason, tc.reason) {
			t.Errorf("%s: got %s %s %q on %s → %d, reason %q; want %s %s %q on %s → %d, reason with %q",
				tc.region, got.DecisionID, got.Action, got.Clause, got.Date, got.LevelTo, got.Reason, tc.id, tc.action, tc.clause, tc.date, tc.to, tc.reason)
		}
		if tc.action == "keep" && !containsStr(got.Flags, schemas.FlagMissingInput) {
			t.Errorf("%s: stale keep without missing_input flag: %v", tc.region, got.Flags)
		}
	}
	if got := byRegion["KZ-75"].DataAsOf; got != day(9) {
		t.Errorf("KZ-75 data_as_of %s, want %s (newest day with data)", got, day(9))
	}

	// Later the same day: nothing new, from the schedule or on demand.
	clock.Set(time.Date(2021, 7, 10, 9, 30, 0, 0, almaty))
	now, err := d.DecideNow(context.Background(), "KZ-75")
	if err != nil {
		t.Fatal(err)
	}
	if now.DecisionID != byRegion["KZ-75"].DecisionID {
		t.Errorf("DecideNow returned %s, want the existing %s", now.DecisionID, byRegion["KZ-75"].DecisionID)
	}
	if _, err := d.DecideNow(context.Background(), "XX-99"); err == nil {
		t.Error("DecideNow of an unknown region succeeded")
	}
	time.Sleep(200 * time.Millisecond)
	if ds := decisions(t, srv.JS); len(ds) != 3 {
		t.Fatalf("extra decisions the same day:%s", summary(ds))
	}

	// Next day: 07-09 is now complete (a new version); KZ-75 strengthens on
	// it, the other two are stale again (one keep each for the new day).
	publish(t, srv.JS, "", ind("KZ-75", 8, 30, 1.4, 60))
	waitStored(t, d, "KZ-75", day(8), 30) // the consumer stores it before the round
	clock.Set(time.Date(2021, 7, 11, 9, 0, 1, 0, almaty))
	ds = waitDecisions(t, srv.JS, 6)
	if len(ds) != 6 {
		t.Fatalf("want 6 decisions after two days:%s", summary(ds))
	}
	last := map[string]schemas.Decision{}
	for _, x := range ds[3:] {
		last[x.Region] = x
	}
	if x := last["KZ-75"]; x.Date != day(8) || x.Action != "strengthen" || x.LevelFrom != 2 || x.LevelTo != 3 {
		t.Errorf("KZ-75 on day two: %s %s %d→%d", x.DecisionID, x.Action, x.LevelFrom, x.LevelTo)
	}
	if x := last["KZ-11"]; x.DecisionID != "KZ-11:2021-07-11:kz-2020-plan@1:stale" || !strings.Contains(x.Reason, "6 days old") {
		t.Errorf("KZ-11 on day two: %s %q", x.DecisionID, x.Reason)
	}
	if p := audit(ds); len(p) > 0 {
		t.Errorf("audit: %v", p)
	}
	if rec := readLevel(t, srv.JS, "KZ-75"); rec.Level != 3 || !rec.Since.Equal(day(10).Time()) {
		t.Errorf("KZ-75 level record %+v, want level 3 since the local day 2021-07-11", rec)
	}
}

// TestRestartAndRedelivery: indicators re-sent under new Nats-Msg-Ids and a
// new decider instance on the same NATS add no decision and no level step.
func TestRestartAndRedelivery(t *testing.T) {
	srv := streamtest.New(t)
	const r = "KZ-75"
	var ins []schemas.Indicator
	for n := 0; n <= 5; n++ {
		ins = append(ins, ind(r, n, uint64(n+1), 1.4, 60))
	}
	publish(t, srv.JS, "", ins...)
	d1, _ := newDecider(t, srv.JS, testConfig(ModeData), nil, time.Now)
	run1 := start(t, d1)
	ds := waitDecisions(t, srv.JS, 5)
	if len(ds) != 5 {
		t.Fatalf("first run:%s", summary(ds))
	}
	// The same records again, as a re-send JetStream cannot de-duplicate,
	// while the decider runs.
	publish(t, srv.JS, ":resent", ins...)
	time.Sleep(300 * time.Millisecond)
	if err := run1.stop(t); err != nil {
		t.Fatal(err)
	}
	// A new instance (another process) on the same NATS, and the records
	// once more.
	_, js2 := srv.Connect("decider-2")
	d2, _ := newDecider(t, js2, testConfig(ModeData), nil, time.Now)
	start(t, d2)
	publish(t, srv.JS, ":again", ins...)
	time.Sleep(500 * time.Millisecond)
	ds = decisions(t, srv.JS)
	if len(ds) != 5 || levelChanges(ds, r) != 5 {
		t.Fatalf("after re-sends and a restart: %d decisions, %d steps:%s", len(ds), levelChanges(ds, r), summary(ds))
	}
	if p := audit(ds); len(p) > 0 {
		t.Errorf("audit: %v", p)
	}
	if rec := readLevel(t, srv.JS, r); rec.Level != 6 || rec.LastDay != day(4) {
		t.Errorf("level record %+v, want level 6 after day 4", rec)
	}
	// The next day still decides normally after the restart.
	publish(t, srv.JS, "", ind(r, 6, 7, 1.4, 60))
	ds = waitDecisions(t, srv.JS, 6)
	if len(ds) != 6 || ds[5].Date != day(5) || ds[5].LevelTo != 7 {
		t.Fatalf("after the restart:%s", summary(ds))
	}
}

// TestCrash: a decider dies right after claiming, or right after publishing,
// the decision on day 3; a new instance completes it. The level moves once
// per day and the stream holds one message per DecisionID. The negative
// control runs the same crash with recovery switched off (and a Nats-Msg-Id
// that JetStream cannot match, as after its duplicate window) and shows that
// the audit catches the double step.
func TestCrash(t *testing.T) {
	const r = "KZ-75"
	for _, tc := range []struct {
		name   string
		at     string // afterClaim or afterPublish
		broken bool   // negative control
	}{
		{"after claim", "afterClaim", false},
		{"after publish", "afterPublish", false},
		{"negative control: no recovery", "afterPublish", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := streamtest.New(t)
			d1, _ := newDecider(t, srv.JS, testConfig(ModeData), nil, time.Now)
			crash := func(dec schemas.Decision) error {
				if dec.Date == day(3) {
					return errCrashed
				}
				return nil
			}
			if tc.at == "afterClaim" {
				d1.hooks.afterClaim = crash
			} else {
				d1.hooks.afterPublish = crash
			}
			run1 := start(t, d1)
			var ins []schemas.Indicator
			for n := 0; n <= 6; n++ {
				ins = append(ins, ind(r, n, uint64(n+1), 1.4, 60))
			}
			publish(t, srv.JS, "", ins...)
			wantBefore := 3 // days 0-2
			if tc.at == "afterPublish" {
				wantBefore = 4 // and day 3, published but not committed
			}
			waitDecisions(t, srv.JS, wantBefore)
			run1.stop(t)
			rec := readLevel(t, srv.JS, r)
			if rec.Pending == nil || rec.Pending.Day != day(3) || rec.Level != 4 {
				t.Fatalf("after the crash the record should hold the claim of day 3 at level 4: %+v", rec)
			}

			_, js2 := srv.Connect("decider-2")
			d2, _ := newDecider(t, js2, testConfig(ModeData), nil, time.Now)
			if tc.broken {
				d2.hooks.noRecovery = true
				d2.hooks.msgID = func(id string) string { return id + ":resent" }
			}
			start(t, d2)
			ds := waitDecisions(t, srv.JS, 6)
			problems := audit(ds)
			steps := levelChanges(ds, r)
			if tc.broken {
				// Day 3's step is on the stream twice: the audit sees it.
				if len(problems) == 0 || steps != 7 {
					t.Fatalf("negative control not detected: %d steps for 6 days, audit %v:%s", steps, problems, summary(ds))
				}
				return
			}
			if len(ds) != 6 || steps != 6 || len(problems) > 0 {
				t.Fatalf("%d decisions, %d steps for 6 days, audit %v:%s", len(ds), steps, problems, summary(ds))
			}
			if rec := readLevel(t, srv.JS, r); rec.Pending != nil || rec.Level != 7 || rec.LastDay != day(5) {
				t.Errorf("level record after recovery: %+v", rec)
			}
		})
	}
}

// TestConcurrentDeciders: four deciders (separate connections, as separate
// processes would be) decide the same region at once; the compare-and-set on
// the level record lets one decision through, and all of them report it.
func TestConcurrentDeciders(t *testing.T) {
	srv := streamtest.New(t)
	const r = "KZ-75"
	publish(t, srv.JS, "", ind(r, 0, 1, 1.4, 60), ind(r, 1, 2, 1.4, 60))
	clock := &fakeClock{}
	clock.Set(time.Date(2021, 7, 3, 12, 0, 0, 0, time.UTC))
	var wg sync.WaitGroup
	ids := make([]string, 4)
	errs := make([]error, 4)
	for i := range 4 {
		_, js := srv.Connect("decider")
		d, _ := newDecider(t, js, testConfig(ModeSchedule), nil, clock.Now)
		wg.Go(func() {
			dec, err := d.DecideNow(context.Background(), r)
			ids[i], errs[i] = dec.DecisionID, err
		})
	}
	wg.Wait()
	for i := range 4 {
		if errs[i] != nil {
			t.Fatalf("decider %d: %v", i, errs[i])
		}
		if ids[i] != r+":2021-07-02:kz-2020-plan@1" {
			t.Errorf("decider %d returned %s", i, ids[i])
		}
	}
	ds := decisions(t, srv.JS)
	if len(ds) != 1 || ds[0].LevelTo != 2 {
		t.Fatalf("want one decision L1 → L2:%s", summary(ds))
	}
	if rec := readLevel(t, srv.JS, r); rec.Level != 2 || rec.Pending != nil {
		t.Errorf("level record %+v", rec)
	}
}

// TestRStatisticOverride: decide.r_statistic bounds reads R's credible
// bounds and is recorded in the version, hence in the DecisionID.
func TestRStatisticOverride(t *testing.T) {
	srv := streamtest.New(t)
	cfg := testConfig(ModeData)
	cfg.RStatistic = RStatisticBounds
	d, _ := newDecider(t, srv.JS, cfg, nil, time.Now)
	start(t, d)
	// Mean 1.35 > 1.3 but the lower bound 1.25 is not: bounds mode keeps.
	publish(t, srv.JS, "", ind("KZ-75", 0, 1, 1.35, 60), ind("KZ-75", 1, 2, 1.35, 60))
	ds := waitDecisions(t, srv.JS, 1)
	if len(ds) != 1 {
		t.Fatalf("%s", summary(ds))
	}
	got := ds[0]
	if got.Action != "keep" || got.RMethod != "cori/bounds" || got.RuleSetVersion != "1+r.statistic=bounds" ||
		got.DecisionID != "KZ-75:2021-07-01:kz-2020-plan@1+r.statistic=bounds" {
		t.Errorf("got %s %s %s %s", got.DecisionID, got.Action, got.RMethod, got.RuleSetVersion)
	}
}

// TestMissingDayAndBadRecord: in data mode a day without a record is
// decided as keep with missing_input and the reason; an undecodable record
// is dead-lettered and does not stop the decider.
func TestMissingDayAndBadRecord(t *testing.T) {
	srv := streamtest.New(t)
	d, _ := newDecider(t, srv.JS, testConfig(ModeData), nil, time.Now)
	start(t, d)
	const r = "KZ-75"
	if _, err := srv.JS.Publish(context.Background(), schemas.IndicatorSubject(r), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	publish(t, srv.JS, "", ind(r, 0, 1, 1.4, 60), ind(r, 2, 3, 1.4, 60), ind(r, 3, 4, 1.4, 60))
	ds := waitDecisions(t, srv.JS, 3)
	if len(ds) != 3 {
		t.Fatalf("%s", summary(ds))
	}
	gap := ds[1]
	if gap.Date != day(1) || gap.Action != "keep" || gap.Clause != clauseMiss || !containsStr(gap.Flags, schemas.FlagMissingInput) ||
		!strings.Contains(gap.Reason, "no indicator for 2021-07-02") || gap.LevelFrom != 2 || gap.LevelTo != 2 {
		t.Errorf("missing day: %+v", gap)
	}
	if ds[2].LevelTo != 3 {
		t.Errorf("the day after the gap: %s %d→%d", ds[2].Action, ds[2].LevelFrom, ds[2].LevelTo)
	}
	dl, err := srv.JS.Stream(context.Background(), schemas.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := dl.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters: %d, want 1", info.State.Msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStored waits until the decider holds a region's record of a day at
// least at version v.
func waitStored(t *testing.T, d *Decider, region string, day schemas.Date, v uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d.mu.Lock()
		in, ok := d.hist.get(region, day)
		d.mu.Unlock()
		if ok && in.Version >= v {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s version %d not stored within 5s", region, day, v)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// gauge reads one labelled counter or gauge from the registry.
func gauge(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return value(m)
				}
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return 0
}

func value(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func lint(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestStrayOldEventOpensNoDecisions: a region whose only data is one old
// event gets its records (the processor runs every region's series to the
// newest day) but no run of daily decisions; a region whose data begin
// within decide.window_days is decided from its first reporting day.
func TestStrayOldEventOpensNoDecisions(t *testing.T) {
	srv := streamtest.New(t)
	cfg := testConfig(ModeData)
	d, _ := newDecider(t, srv.JS, cfg, nil, time.Now)
	start(t, d)
	through := day(400)
	// KG-C: one vaccination 400 days ago, then nothing: records without
	// anything decisions read, every day up to the newest data day.
	var stray []schemas.Indicator
	for n := 0; n <= 400; n++ {
		in := schemas.Indicator{Region: "KG-C", Date: day(n), Version: 7, VaccinatedDose1: 1}
		stray = append(stray, in)
	}
	// KG-Y: one case 400 days ago (its 7-day window counts it), then nothing.
	for n := 0; n <= 400; n++ {
		in := schemas.Indicator{Region: "KG-Y", Date: day(n), Version: 8}
		if n < 7 {
			in.Cases7d = 1
		}
		stray = append(stray, in)
	}
	// KZ-75: silent records until day 390, reporting from day 391 on.
	var real []schemas.Indicator
	for n := 300; n <= 400; n++ {
		in := schemas.Indicator{Region: "KZ-75", Date: day(n), Version: 9}
		if n > 390 {
			in = ind("KZ-75", n, 9, 1.1, 60)
			in.Cases7d = 20
		}
		real = append(real, in)
	}
	// As the processor publishes them: every record says the data then ran
	// through day 400.
	publishThrough(t, srv.JS, through, append(stray, real...)...)
	// KZ-75: days 391..399 (400 waits for 401).
	ds := waitDecisions(t, srv.JS, 9)
	for _, dec := range ds {
		if dec.Region != "KZ-75" {
			t.Errorf("decision for %s, whose only event is 400 days old: %s %s", dec.Region, dec.DecisionID, dec.Reason)
		}
	}
	if len(ds) != 9 || ds[0].Date != day(391) || ds[len(ds)-1].Date != day(399) {
		t.Errorf("KZ-75 decisions: %s\nwant days %s to %s", summary(ds), day(391), day(399))
	}
}

// TestStrengthenPauseInDecisions: with the default levels a surge that
// meets the strengthen rule every day moves one level per 7-day pause, and
// each paused day's decision says so.
func TestStrengthenPauseInDecisions(t *testing.T) {
	srv := streamtest.New(t)
	cfg := testConfig(ModeData)
	cfg.Levels = DefaultConfig().Levels
	d, _ := newDecider(t, srv.JS, cfg, nil, time.Now)
	start(t, d)
	const r = "KZ-75"
	var ins []schemas.Indicator
	for n := 0; n <= 21; n++ {
		ins = append(ins, ind(r, n, uint64(n+1), 1.4, 60))
	}
	publish(t, srv.JS, "", ins...)
	ds := waitDecisions(t, srv.JS, 21)
	for _, x := range ds {
		n := int(x.Date - d0)
		want := min(2+n/7, 4)
		if x.Action != "strengthen" || x.LevelTo != want {
			t.Errorf("day %d: %s to level %d, want level %d", n, x.Action, x.LevelTo, want)
		}
		if n%7 != 0 && n < 14 && !strings.Contains(x.Reason, "strengthen paused: ") { // from day 14 at the top
			t.Errorf("day %d: no pause in the reason: %q", n, x.Reason)
		}
	}
}

// TestUncertainRIsUnknown: sporadic cases (R from one case in six days: the
// prior dominates, R 1.4–2.3) with beds at 60 % never strengthen — R is
// unknown to the rules — and, only with decide.uncertain_r_may_ease, a low
// uncertain R eases when the beds allow.
func TestUncertainRIsUnknown(t *testing.T) {
	few := func(n int, r, occ float64) schemas.Indicator {
		in := ind("KZ-79", n, uint64(n+1), r, occ)
		in.RStatus, in.RCases, in.Cases7d = schemas.RStatusFewCases, 1, 1
		in.Uncertain = []string{"r_mean", "r_sd", "r_q025", "r_median", "r_q975", "r_ratio"}
		in.Flags, in.FlagReasons = []string{schemas.FlagFewCases}, []string{"few_cases: R 1.80 from 1 local cases"}
		return in
	}
	for _, mayEase := range []bool{false, true} {
		t.Run(fmt.Sprintf("uncertain_r_may_ease=%v", mayEase), func(t *testing.T) {
			srv := streamtest.New(t)
			cfg := testConfig(ModeData)
			cfg.UncertainRMayEase = mayEase
			cfg.InitialLevels = map[string]int{"KZ-79": 3}
			d, _ := newDecider(t, srv.JS, cfg, nil, time.Now)
			start(t, d)
			var ins []schemas.Indicator
			for n := 0; n < 10; n++ {
				ins = append(ins, few(n, 1.8, 60)) // would strengthen (plan 1a) on a certain R
			}
			for n := 10; n < 16; n++ {
				ins = append(ins, few(n, 0.8, 40)) // would ease on a certain R
			}
			publish(t, srv.JS, "", ins...)
			ds := waitDecisions(t, srv.JS, 15)
			eased := false
			for _, x := range ds {
				if x.Action == "strengthen" {
					t.Errorf("%s: strengthened on an uncertain R: %q", x.Date, x.Reason)
				}
				if x.RStatus != schemas.RStatusFewCases || !strings.Contains(x.Reason, "few_cases: R 1.80 from 1 local cases") {
					t.Errorf("%s: r_status %q, reason %q", x.Date, x.RStatus, x.Reason)
				}
				if x.Action == "ease" {
					eased = true
					if !strings.Contains(x.Reason, "uncertain; decide.uncertain_r_may_ease lets it ease") {
						t.Errorf("%s: ease without saying R was uncertain: %q", x.Date, x.Reason)
					}
				}
			}
			if eased != mayEase {
				t.Errorf("eased %v with uncertain_r_may_ease %v", eased, mayEase)
			}
		})
	}
}

// TestNowcastDecision: with r.nowcast on, a provisional day is decided at
// once, on the nowcast R (the complete-days R of the day reads low), when
// the rule set recommends the same wherever the final data's R mean is
// expected to land (r_nowcast_final_*: 80 % for a strengthen or a keep,
// 95 % for an ease; records without them: the 95 %, or R's 95 % CrI), and
// says so; a day where it may land on either side of a threshold, or in a
// band between two, waits like any other.
func TestNowcastDecision(t *testing.T) {
	srv := streamtest.New(t)
	cfg := testConfig(ModeData)
	cfg.RNowcast = "on"
	d, _ := newDecider(t, srv.JS, cfg, nil, time.Now)
	start(t, d)
	nowcastDay := func(in schemas.Indicator, mean, lo, hi float64) schemas.Indicator {
		in = provisional(in)
		in.NowcastAsOf = in.Date.AddDays(1)
		in.RNowcastMean, in.RNowcastQ025, in.RNowcastMedian, in.RNowcastQ975 = fp(mean), fp(lo), fp(mean), fp(hi)
		return in
	}
	// Day 0's own R (0.9, low because its cases are not all in) keeps at
	// 60 % beds; its nowcast R 1.6 (1.4–1.9) strengthens across the interval.
	publish(t, srv.JS, "", nowcastDay(ind("KZ-11", 0, 1, 0.9, 60), 1.6, 1.4, 1.9), ind("KZ-11", 1, 2, 1.6, 60))
	// KZ-75's nowcast R 1.2 (0.9–1.6) spans 1.3: day 0 waits.
	publish(t, srv.JS, "", nowcastDay(ind("KZ-75", 0, 1, 0.9, 60), 1.2, 0.9, 1.6), ind("KZ-75", 1, 2, 1.2, 60))
	withFinal := func(in schemas.Indicator, lo, hi float64) schemas.Indicator {
		in.RNowcastFinalQ025, in.RNowcastFinalQ975 = fp(lo), fp(hi)
		return in
	}
	// KZ-79's CrI 1.1–2.0 spans 1.3, but its final mean is expected in
	// 1.4–1.7: strengthened at once.
	publish(t, srv.JS, "", withFinal(nowcastDay(ind("KZ-79", 0, 1, 0.9, 60), 1.5, 1.1, 2.0), 1.4, 1.7), ind("KZ-79", 1, 2, 1.5, 60))
	// KZ-55's final mean may land on either side of 1.3 (1.25–1.45): waits.
	publish(t, srv.JS, "", withFinal(nowcastDay(ind("KZ-55", 0, 1, 0.9, 60), 1.35, 1.0, 1.8), 1.25, 1.45), ind("KZ-55", 1, 2, 1.35, 60))
	// KZ-35 at 80 % beds: 1.1, the mean 1.35 and 1.4 all keep, but the
	// band 1.15–1.3 between them strengthens: waits.
	publish(t, srv.JS, "", withFinal(nowcastDay(ind("KZ-35", 0, 1, 0.9, 80), 1.35, 0.9, 1.7), 1.1, 1.4), ind("KZ-35", 1, 2, 1.35, 80))
	with80 := func(in schemas.Indicator, lo, hi float64) schemas.Indicator {
		in.RNowcastFinalQ10, in.RNowcastFinalQ90 = fp(lo), fp(hi)
		return in
	}
	// KZ-71: the final mean's 95 % interval 1.25–1.8 spans 1.3, its 80 %
	// interval 1.35–1.7 does not: a strengthen needs only the 80 %.
	publish(t, srv.JS, "", with80(withFinal(nowcastDay(ind("KZ-71", 0, 1, 0.9, 60), 1.5, 1.0, 2.0), 1.25, 1.8), 1.35, 1.7), ind("KZ-71", 1, 2, 1.5, 60))
	// KG-C at 40 % beds: 0.8–0.95 (80 %) all ease, but 0.75–1.05 (95 %)
	// spans 1: an ease needs the 95 %, so the day waits.
	publish(t, srv.JS, "", with80(withFinal(nowcastDay(ind("KG-C", 0, 1, 0.6, 40), 0.87, 0.5, 1.3), 0.75, 1.05), 0.8, 0.95), ind("KG-C", 1, 2, 0.87, 40))
	// KG-B at 40 % beds: 0.7–0.95 (95 %) all ease: eased at once.
	publish(t, srv.JS, "", with80(withFinal(nowcastDay(ind("KG-B", 0, 1, 0.6, 40), 0.82, 0.5, 1.2), 0.7, 0.95), 0.75, 0.9), ind("KG-B", 1, 2, 0.82, 40))
	ds := waitDecisions(t, srv.JS, 4)
	if len(ds) != 4 {
		t.Fatalf("got %d decisions, want day 0 of KG-B, KZ-11, KZ-71 and KZ-79 only:%s", len(ds), summary(ds))
	}
	slices.SortFunc(ds, func(a, b schemas.Decision) int { return strings.Compare(a.Region, b.Region) })
	for i, w := range []struct{ region, action, why string }{
		{"KG-B", "ease", "the complete data's R mean is expected in 0.70–0.95 (95 %), the same recommendation across it"},
		{"KZ-11", "strengthen", "the same recommendation across it"},
		{"KZ-71", "strengthen", "the complete data's R mean is expected in 1.35–1.70 (80 %), the same recommendation across it"},
		{"KZ-79", "strengthen", "the complete data's R mean is expected in 1.40–1.70 (95 %), the same recommendation across it"},
	} {
		if dec := ds[i]; dec.Region != w.region || dec.Date != day(0) || dec.Action != w.action || !strings.Contains(dec.Reason, w.why) {
			t.Errorf("decision %s %s %s (%q), want %s day 0 %s saying %q", dec.Region, dec.Date, dec.Action, dec.Reason, w.region, w.action, w.why)
		}
	}
	dec := ds[1]
	if dec.Region != "KZ-11" || dec.Date != day(0) || dec.Action != "strengthen" {
		t.Fatalf("decision %s %s %s, want KZ-11 day 0 strengthen", dec.Region, dec.Date, dec.Action)
	}
	if !containsStr(dec.Flags, schemas.FlagNowcast) || !strings.HasSuffix(dec.RMethod, "/nowcast") || dec.RMean == nil || *dec.RMean != 1.6 ||
		!strings.Contains(dec.Reason, "R from the nowcast as of "+day(1).String()) || !strings.Contains(dec.Reason, "the same recommendation across it") {
		t.Errorf("the decision does not say it used the nowcast: flags %v method %q r_mean %v reason %q", dec.Flags, dec.RMethod, dec.RMean, dec.Reason)
	}
	if _, v := d.RuleSet(); !strings.HasSuffix(v, "+r.nowcast=on") {
		t.Errorf("rule-set version %q does not record the override", v)
	}
}

// TestLostLeaseDecidesNothing: a decider that lost its lease (another
// replica holds it now) publishes no decision and writes no level; while it
// held the lease its decisions carried the fencing token.
func TestLostLeaseDecidesNothing(t *testing.T) {
	srv := streamtest.New(t)
	ctx := context.Background()
	const held, lost = "KZ-75", "KZ-71"
	publish(t, srv.JS, "", ind(held, 0, 1, 1.4, 60), ind(held, 1, 2, 1.4, 60), ind(lost, 0, 1, 1.4, 60), ind(lost, 1, 2, 1.4, 60))
	clock := &fakeClock{}
	clock.Set(time.Date(2021, 7, 3, 12, 0, 0, 0, time.UTC))
	d, _ := newDecider(t, srv.JS, testConfig(ModeSchedule), nil, clock.Now)

	leases := make(chan *stream.Lease, 1)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_ = srv.Bus.RunExclusive(cctx, "decide", "A", nil, func(fctx context.Context, l *stream.Lease) error {
			leases <- l
			<-fctx.Done()
			return nil
		})
	}()
	l := <-leases
	d.lease = l
	if _, err := d.DecideNow(ctx, held); err != nil {
		t.Fatalf("deciding under a held lease: %v", err)
	}
	st, err := srv.JS.Stream(ctx, schemas.StreamDecisions)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, schemas.DecisionSubject(held))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Header.Get(schemas.HeaderLeaseToken), strconv.FormatUint(l.Token(), 10); got != want {
		t.Errorf("decision's lease token %q, want %q", got, want)
	}

	// Another replica takes the lease.
	srv.TakeLease("decide", "B")
	deadline := time.Now().Add(3 * stream.DefaultLeaseTTL)
	for !errors.Is(l.Check(), stream.ErrLeaseLost) {
		if time.Now().After(deadline) {
			t.Fatal("the lease was never seen lost")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := d.DecideNow(ctx, lost); !errors.Is(err, stream.ErrLeaseLost) {
		t.Errorf("deciding after the lease was lost: %v, want the lease lost", err)
	}
	for _, dec := range decisions(t, srv.JS) {
		if dec.Region == lost {
			t.Errorf("a decision was published without the lease: %s", dec.DecisionID)
		}
	}
	lkv, err := srv.JS.KeyValue(ctx, schemas.BucketLevels)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := lkv.Get(ctx, lost); err == nil {
		t.Errorf("a level was written without the lease: %s", e.Value())
	}
}
