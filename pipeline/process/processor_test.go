package process

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

const almatyPop = 2230000 // KZ-75 in schemas/regions.csv

// knownInput is a small week in Almaty (KZ-75) whose indicators on day 6 are
// computed by hand in TestKnownInput.
func knownInput() []schemas.Event {
	const r = "KZ-75"
	var evs []schemas.Event
	// Confirmed cases, days 0..6: 1, 0, 2, 2 (1 imported), 0, 2, 3 = 10.
	evs = append(evs,
		caseEv("c1", r, 0, of("contact-17")), // reported before contact-17's contact: not "became a case"
		caseEv("c2", r, 2, of("contact-1")),
		caseEv("c3", r, 2, of("x3")),
		caseEv("c4", r, 3, of("contact-2")),
		caseEv("c5", r, 3, of("x5"), imported),
		caseEv("c6", r, 5, of("contact-5")),
		caseEv("c7", r, 5, of("x7")),
		caseEv("c8", r, 6, of("contact-9")),
		caseEv("c9", r, 6, of("contact-13")),
		caseEv("c10", r, 6, of("x10"), onset(4)),
		caseEv("c11", r, 6, of("x11"), probable), // probable: not counted
	)
	// 20 contacts, four a day on days 0..4: contact-1..20.
	for i := 1; i <= 20; i++ {
		evs = append(evs, contactEv("k"+itoa(i), r, (i-1)/4, "x3", "contact-"+itoa(i)))
	}
	// Conclusive PCR/antigen tests in the week: 40, of which 10 positive.
	n := 0
	test := func(d int, res string, opts ...func(*schemas.Event)) {
		n++
		evs = append(evs, testEv("t"+itoa(n), r, d, res, opts...))
	}
	for i := 0; i < 10; i++ {
		test(1, schemas.ResultNegative)
	}
	for i := 0; i < 4; i++ {
		test(3, schemas.ResultPositive)
	}
	for i := 0; i < 6; i++ {
		test(3, schemas.ResultNegative)
	}
	for i := 0; i < 5; i++ {
		test(5, schemas.ResultPositive, withResult(schemas.TestAntigen, schemas.ResultPositive))
		test(5, schemas.ResultNegative, withResult(schemas.TestAntigen, schemas.ResultNegative))
	}
	test(6, schemas.ResultPositive)
	for i := 0; i < 9; i++ {
		test(6, schemas.ResultNegative)
	}
	test(6, schemas.ResultPositive, withResult(schemas.TestAntibody, schemas.ResultPositive))    // not diagnostic
	test(6, schemas.ResultInconclusive, withResult(schemas.TestPCR, schemas.ResultInconclusive)) // not conclusive
	// Beds as of the end of day 6.
	evs = append(evs,
		bedEv("b1", r, "F1", schemas.BedInfectious, 5, 9, 100, 50),
		bedEv("b2", r, "F1", schemas.BedInfectious, 6, 9, 100, 60),  // replaces b1
		bedEv("b3", r, "F2", schemas.BedInfectious, 5, 10, 50, 30),  // 38 h old at the end of day 6: fresh
		bedEv("b4", r, "F3", schemas.BedInfectious, 3, 9, 200, 190), // 87 h old: stale
		bedEv("b5", r, "F1", schemas.BedICU, 6, 9, 20, 15),
		bedEv("b6", r, "F2", schemas.BedProvisional, 6, 9, 40, 10),
	)
	// Vaccinations: persons a, b, c got dose 1 (a twice on record), a dose 2,
	// a doses 3 and 4.
	evs = append(evs,
		vaxEv("v1", r, 1, "a", 1),
		vaxEv("v2", r, 4, "a", 1),
		vaxEv("v3", r, 2, "b", 1),
		vaxEv("v4", r, 5, "c", 1),
		vaxEv("v5", r, 5, "a", 2),
		vaxEv("v6", r, 6, "a", 3),
		vaxEv("v7", r, 6, "a", 4),
	)
	// Another region, and a test on day 7 that must not change day 6.
	evs = append(evs, caseEv("astana-1", "KZ-71", 6))
	evs = append(evs, testEv("t-late", r, 7, schemas.ResultPositive))
	// Almaty's case feed says day 7 is complete (no case): R of day 7 is
	// computed, not left missing.
	evs = append(evs, reportComplete("rc-7", r, schemas.TypeCase, 7))
	return evs
}

func itoa(i int) string { return strconv.Itoa(i) }

func approx(t *testing.T, name string, got *float64, want float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want %v", name, want)
		return
	}
	if math.Abs(*got-want) > 1e-12*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", name, *got, want)
	}
}

func TestKnownInput(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	lastSeq := publishEvents(t, s.JS, events(knownInput()...))
	run := startProcessor(t, s.URL, testConfig(), nil)
	waitProcessed(t, s.JS, lastSeq)
	recs := latest(t, readIndicators(t, s.JS))

	in := get(t, recs, "KZ-75", day(6))
	// Counts.
	if in.Cases != 3 || in.CasesLocal != 3 || in.CasesImported != 0 || in.Cases7d != 10 {
		t.Errorf("cases = %d (local %d, imported %d), 7d %d; want 3 (3, 0), 10", in.Cases, in.CasesLocal, in.CasesImported, in.Cases7d)
	}
	approx(t, "cases_7d_per_100k", in.Cases7dPer100k, 10*1e5/almatyPop)
	// Tests: 40 conclusive diagnostic tests, 10 positive.
	if in.Tests7d != 40 || in.TestsPositive7d != 10 {
		t.Errorf("tests 7d = %d, positive %d; want 40, 10", in.Tests7d, in.TestsPositive7d)
	}
	approx(t, "positivity_7d_pct", in.Positivity7dPct, 25)
	approx(t, "tests_7d_per_100k", in.Tests7dPer100k, 40*1e5/almatyPop)
	// Beds: F1 60/100 + F2 30/50 = 90/150; F3 stale.
	if in.BedsTotal != 150 || in.BedsOccupied != 90 || in.StaleFacilities != 1 {
		t.Errorf("beds %d/%d, stale %d; want 90/150, 1", in.BedsOccupied, in.BedsTotal, in.StaleFacilities)
	}
	approx(t, "bed_occupancy_pct", in.BedOccupancyPct, 60)
	approx(t, "icu_occupancy_pct", in.ICUOccupancyPct, 75)
	approx(t, "provisional_occupancy_pct", in.ProvOccupancyPct, 25)
	if len(in.Flags) != 1 || in.Flags[0] != schemas.IndicatorFlagStaleBeds {
		t.Errorf("flags = %v, want [%s]", in.Flags, schemas.IndicatorFlagStaleBeds)
	}
	// Contacts: 20 in the week over 10 cases; 5 became cases.
	if in.Contacts7d != 20 {
		t.Errorf("contacts 7d = %d, want 20", in.Contacts7d)
	}
	approx(t, "contacts_per_case", in.ContactsPerCase, 2)
	approx(t, "contacts_became_cases_pct", in.ContactsBecameCasesPct, 25)
	// Vaccination: persons, not events.
	if in.VaccinatedDose1 != 3 || in.VaccinatedDose2 != 1 || in.VaccinatedDose3Plus != 1 {
		t.Errorf("vaccinated %d/%d/%d, want 3/1/1", in.VaccinatedDose1, in.VaccinatedDose2, in.VaccinatedDose3Plus)
	}
	approx(t, "vaccination_dose1_pct", in.VaccinationDose1Pct, 3*100.0/almatyPop)
	approx(t, "vaccination_dose2_pct", in.VaccinationDose2Pct, 100.0/almatyPop)
	// Onset: c10's onset on day 4.
	if d4 := get(t, recs, "KZ-75", day(4)); d4.CasesByOnset != 1 {
		t.Errorf("cases by onset on day 4 = %d, want 1", d4.CasesByOnset)
	}
	// Version: the last Almaty event dated on or before day 6 is the fourth
	// from last message (then come Astana's case, the day-7 test and the
	// report_complete of day 7); ComputedAt is its JetStream time.
	if in.Version != lastSeq-3 {
		t.Errorf("version = %d, want %d", in.Version, lastSeq-3)
	}
	st, err := s.JS.Stream(context.Background(), schemas.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetMsg(context.Background(), lastSeq-3)
	if err != nil {
		t.Fatal(err)
	}
	if !in.ComputedAt.Equal(raw.Time) {
		t.Errorf("computed_at = %s, want the event's stream time %s", in.ComputedAt, raw.Time)
	}
	// Not available is nil, never 0.
	d0r := get(t, recs, "KZ-75", day(0))
	if d0r.VaccinationDose1Pct != nil || d0r.Positivity7dPct != nil || d0r.Tests7dPer100k != nil || d0r.BedOccupancyPct != nil || d0r.RMean != nil {
		t.Errorf("day 0 has values without data: %+v", d0r)
	}
	// Day 7 exists for every region with data; KZ-71 starts on day 6.
	for _, k := range []string{"KZ-75/" + day(7).String(), "KZ-71/" + day(6).String(), "KZ-71/" + day(7).String()} {
		if _, ok := recs[k]; !ok {
			t.Errorf("no record %s", k)
		}
	}
	if _, ok := recs["KZ-71/"+day(5).String()]; ok {
		t.Errorf("KZ-71 has a record before its first event")
	}
	checkR(t, recs, "KZ-75", knownInput(), testConfig())

	// Metrics: per-region gauges of the latest day, names that pass promlint.
	// The gauges show the latest day, 7: F1's day-6 report is 39 h old, F2's
	// day-5 report 62 h (stale): 60/100.
	if got := value(t, run.p.m.bedRatio.WithLabelValues("KZ-75")); got != 0.6 {
		t.Errorf("bed occupancy gauge = %v, want 0.6 (day 7)", got)
	}
	if got := value(t, run.p.m.stale.WithLabelValues("KZ-75")); got != 2 {
		t.Errorf("stale facilities gauge = %v, want 2 (day 7)", got)
	}
	if err := run.stop(t); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	lintMetrics(t, run)
}

// value reads a counter or gauge (the testutil package would need a module
// this repository does not pin).
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge: %v", c.Desc())
	return 0
}

func lintMetrics(t *testing.T, run *running) {
	t.Helper()
	mfs, err := run.reg.Gather()
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
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{schemas.MetricProcessEventsApplied, schemas.MetricProcessIndicatorsPublished, schemas.MetricProcessLag, schemas.MetricRegionRMean, schemas.MetricRegionBedOccupancy, schemas.MetricProcessCheckpointSequence} {
		if !names[want] {
			t.Errorf("metric %s not exported", want)
		}
	}
}

// lateInput: one case a day on days 0..12 in Almaty and one facility
// reporting every day.
func lateInput() []schemas.Event {
	var evs []schemas.Event
	for d := 0; d <= 12; d++ {
		evs = append(evs, caseEv("c"+itoa(d), "KZ-75", d))
		evs = append(evs, caseEv("c"+itoa(d)+"b", "KZ-75", d))
		evs = append(evs, bedEv("b"+itoa(d), "KZ-75", "F1", schemas.BedInfectious, d, 9, 100, 80))
	}
	return evs
}

func TestLateEventsUpdateEveryAffectedDay(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	seq := publishEvents(t, s.JS, events(lateInput()...))
	startProcessor(t, s.URL, testConfig(), nil)
	waitProcessed(t, s.JS, seq)
	before := readIndicators(t, s.JS)
	old := latest(t, before)

	// A case reported today (day 12) for ten days ago.
	seq = publishEvents(t, s.JS, events(caseEv("late", "KZ-75", 2)))
	waitProcessed(t, s.JS, seq)
	all := readIndicators(t, s.JS)
	now := latest(t, all)
	changed := map[schemas.Date]bool{}
	for _, r := range all[len(before):] {
		changed[r.ind.Date] = true
		if r.ind.Version != seq {
			t.Errorf("%s republished with version %d, want %d", r.ind.Key(), r.ind.Version, seq)
		}
	}
	for d := 0; d <= 12; d++ {
		o, n := get(t, old, "KZ-75", day(d)), get(t, now, "KZ-75", day(d))
		wantDelta := 0
		if d >= 2 && d <= 8 { // the 7-day windows that contain day 2
			wantDelta = 1
		}
		if n.Cases7d-o.Cases7d != wantDelta {
			t.Errorf("day %d: cases 7d %d -> %d, want +%d", d, o.Cases7d, n.Cases7d, wantDelta)
		}
		if changed[day(d)] != (d >= 2) {
			t.Errorf("day %d republished = %v, want %v (every day from the late case on)", d, changed[day(d)], d >= 2)
		}
	}
	if n := get(t, now, "KZ-75", day(2)); n.Cases != 3 {
		t.Errorf("day 2 cases = %d, want 3", n.Cases)
	}

	// A corrected snapshot of day 12 (same time, new event_id) replaces it.
	seq = publishEvents(t, s.JS, events(bedEv("b12-fix", "KZ-75", "F1", schemas.BedInfectious, 12, 9, 100, 40)))
	waitProcessed(t, s.JS, seq)
	all2 := readIndicators(t, s.JS)
	now = latest(t, all2)
	if n := get(t, now, "KZ-75", day(12)); n.BedOccupancyPct == nil || *n.BedOccupancyPct != 40 || n.BedsOccupied != 40 {
		t.Errorf("day 12 occupancy after the correction = %v (%d occupied), want 40%%", n.BedOccupancyPct, n.BedsOccupied)
	}
	if n := get(t, now, "KZ-75", day(11)); *n.BedOccupancyPct != 80 {
		t.Errorf("day 11 occupancy = %v, want 80%% (the correction is for day 12)", *n.BedOccupancyPct)
	}
	for _, r := range all2[len(all):] {
		if r.ind.Date != day(12) {
			t.Errorf("the day-12 correction republished %s", r.ind.Key())
		}
	}
}

func TestDuplicatesChangeNothing(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	evs := lateInput()
	seq := publishEvents(t, s.JS, events(evs...))
	run := startProcessor(t, s.URL, testConfig(), nil)
	waitProcessed(t, s.JS, seq)
	before := readIndicators(t, s.JS)

	// The same events again under new Nats-Msg-Ids: JetStream stores them
	// (past its duplicate window they would be stored anyway).
	var again []sent
	for _, e := range evs[:10] {
		again = append(again, sent{ev: e, msgID: e.EventID + "-again"})
	}
	seq = publishEvents(t, s.JS, again)
	waitProcessed(t, s.JS, seq)
	after := readIndicators(t, s.JS)
	if len(after) != len(before) {
		t.Errorf("re-sent events published %d new indicator records, want 0", len(after)-len(before))
	}
	if got := value(t, run.p.m.skipped.WithLabelValues("duplicate")); got != 10 {
		t.Errorf("duplicates skipped = %v, want 10", got)
	}
}

func TestCleanShutdownAndRestart(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	seq := publishEvents(t, s.JS, events(lateInput()...))
	cfg := testConfig()
	cfg.CheckpointBatches = 1000 // only the shutdown checkpoints
	cfg.CheckpointInterval = time.Hour
	run := startProcessor(t, s.URL, cfg, nil)
	waitProcessed(t, s.JS, seq)
	if err := run.stop(t); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	kv, err := s.JS.KeyValue(context.Background(), schemas.BucketProcessState)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), manifestKey)
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		t.Fatal(err)
	}
	regions := 0
	for key := range m.Regions {
		if _, _, shard := parseShardKey(key); !shard {
			regions++
		}
	}
	if m.Seq != seq || regions != 1 {
		t.Fatalf("manifest covers seq %d with %d regions, want %d with 1", m.Seq, regions, seq)
	}
	n := len(readIndicators(t, s.JS))

	// A restart neither replays nor republishes; new events continue.
	run2 := startProcessor(t, s.URL, cfg, nil)
	seq = publishEvents(t, s.JS, events(caseEv("new", "KZ-75", 12)))
	waitProcessed(t, s.JS, seq)
	if err := run2.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := value(t, run2.p.m.applied.WithLabelValues("case")); got != 1 {
		t.Errorf("restarted processor applied %v cases, want 1 (no replay)", got)
	}
	if got := len(readIndicators(t, s.JS)) - n; got != 1 {
		t.Errorf("restart + 1 event published %d records, want 1", got)
	}
}

func TestUndecodableEventIsDeadLetteredAndDoesNotBlock(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	pub := s.Bus.Publisher()
	ctx := context.Background()
	publishEvents(t, s.JS, events(caseEv("c1", "KZ-75", 0)))
	if r := pub.Publish(ctx, stream.Msg{Subject: s.Refs().Subject("t", "garbage", schemas.TypeCase, "KZ-75"), ID: s.Refs().Ref("t", "garbage"), Data: []byte(`{"event_id":`)}); r.Err != nil {
		t.Fatal(r.Err)
	}
	seq := publishEvents(t, s.JS, events(caseEv("c2", "KZ-75", 0)))
	startProcessor(t, s.URL, testConfig(), nil)
	waitProcessed(t, s.JS, seq)
	recs := latest(t, readIndicators(t, s.JS))
	if in := get(t, recs, "KZ-75", day(0)); in.Cases != 2 {
		t.Errorf("cases = %d, want 2 (the events around the bad one)", in.Cases)
	}
	dlq, err := s.JS.Stream(ctx, schemas.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dlq.GetLastMsgForSubject(ctx, schemas.DeadLetterSubject(schemas.DeadLetterStageProcess, "case"))
	if err != nil {
		t.Fatalf("dead letter: %v", err)
	}
	if string(m.Data) != `{"event_id":` || !strings.Contains(m.Header.Get(schemas.HeaderReason), "decode event") {
		t.Errorf("dead letter %q reason %q", m.Data, m.Header.Get(schemas.HeaderReason))
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"unknown pathogen", func(c *Config) { c.Pathogen = "measles" }, "process.pathogen"},
		{"pathogen configured", func(c *Config) {
			c.Pathogen = "influenza"
			c.SerialIntervals = map[string]SerialInterval{"influenza": {Mean: 3.6, SD: 1.6}}
		}, ""},
		{"bad serial interval", func(c *Config) { c.SerialIntervals = map[string]SerialInterval{PathogenCOVID19: {Mean: 4.7}} }, "serial_intervals.covid-19"},
		{"window", func(c *Config) { c.RWindowDays = 0 }, "r_window_days"},
		{"prior", func(c *Config) { c.PriorSD = -1 }, "prior"},
		{"r date", func(c *Config) { c.RDate = "sample" }, "r_date"},
		{"onset is fine", func(c *Config) { c.RDate = RByOnset }, ""},
		{"bed age", func(c *Config) { c.BedMaxAge = 0 }, "bed_max_age"},
		{"checkpoint", func(c *Config) { c.CheckpointInterval = 0 }, "checkpoint_interval"},
		{"batch", func(c *Config) { c.BatchSize = 0 }, "batch_size"},
		{"ack wait", func(c *Config) { c.AckWait = time.Second }, "ack_wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}

// TestFullBatchesPublishAtOnceWithoutBacklog: a full batch is published at
// once when nothing more waits behind it (a steady load that fills every
// fetch, which the processor keeps up with), while a real backlog is still
// published once per Config.PublishInterval rather than once per batch.
func TestFullBatchesPublishAtOnceWithoutBacklog(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	sameDay := func(prefix string, n int) []schemas.Event {
		evs := make([]schemas.Event, n)
		for i := range evs {
			evs[i] = caseEv(prefix+itoa(i), "KZ-75", 5)
		}
		return evs
	}
	// A backlog of ten full batches, all on one day: one record per publish.
	seq := publishEvents(t, s.JS, events(sameDay("backlog-", 100)...))
	cfg := testConfig()
	cfg.BatchSize = 10
	cfg.PublishInterval = time.Hour // only "no backlog" publishes
	run := startProcessor(t, s.URL, cfg, nil)
	waitVersion := func(seq uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, r := range readIndicators(t, s.JS) {
				if r.ind.Version >= seq {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no indicator record with version %d within 10s (publish_interval is an hour)", seq)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitVersion(seq)
	if got := sum(t, run, schemas.MetricProcessIndicatorsPublished); got > 3 {
		t.Errorf("a backlog of 10 full batches published %v records, want at most 3 (first batch, last batch, maybe one between)", got)
	}
	// Now a single full batch with nothing behind it: published at once.
	seq = publishEvents(t, s.JS, events(sameDay("steady-", 10)...))
	waitVersion(seq)
}

// TestFeedLagMetric: the stale-feed alert reads epiwatch_feed_lag_seconds:
// a region whose case feed stopped 3 days before its tests shows 3 days for
// cases and 0 for tests; a feed it never used has no series.
func TestFeedLagMetric(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	var evs []schemas.Event
	for d := 0; d <= 8; d++ {
		if d <= 5 {
			evs = append(evs, caseEv("lag-c"+itoa(d), "KZ-35", d))
		}
		evs = append(evs, testEv("lag-t"+itoa(d), "KZ-35", d, schemas.ResultNegative, func(e *schemas.Event) { e.ResultDate = e.SampleDate }))
	}
	lastSeq := publishEvents(t, s.JS, events(evs...))
	run := startProcessor(t, s.URL, testConfig(), nil)
	waitProcessed(t, s.JS, lastSeq)
	if got := value(t, run.p.m.feedLag.WithLabelValues("KZ-35", "case")); got != 3*86400 {
		t.Errorf("case feed lag %v s, want 3 days", got)
	}
	if got := value(t, run.p.m.feedLag.WithLabelValues("KZ-35", "lab_test")); got != 0 {
		t.Errorf("lab feed lag %v s, want 0", got)
	}
	mfs, err := run.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != schemas.MetricFeedLag {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "feed" && l.GetValue() == "vaccination" {
					t.Error("a feed the region never used has a lag series")
				}
			}
		}
	}
}
