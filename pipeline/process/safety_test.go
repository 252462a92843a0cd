package process

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/schemas"
)

// content is a record without what depends on arrival order (its version
// and the stream time of its newest event): what two runs over the same
// events in another order must agree on.
func content(t *testing.T, in schemas.Indicator) string {
	t.Helper()
	in.Version = 0
	in.ComputedAt = storedAt
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// bedsDaily has one facility report infectious beds every day from..to.
func bedsDaily(region, facility string, from, to, total, occupied int) []schemas.Event {
	var evs []schemas.Event
	for d := from; d <= to; d++ {
		evs = append(evs, bedEv(fmt.Sprintf("%s-%s-b%d", region, facility, d), region, facility, schemas.BedInfectious, d, 9, total, occupied))
	}
	return evs
}

// TestStaleCaseFeed: a region's case feed stops for 3 days while its tests
// and beds keep flowing. Those days are missing, not zero: R and incidence
// are not computed from them, the record says which feed is stale and
// since when. When the late cases arrive, every record is what it would
// have been had they come on time.
func TestStaleCaseFeed(t *testing.T) {
	const r = "KZ-75"
	cases := steadyCases(r, 0, 23, 50) // 50 cases and one test a day
	var onTime, early, late []schemas.Event
	for _, e := range cases {
		if e.Type == schemas.TypeCase && e.ReportDate > day(20) {
			late = append(late, e)
		} else {
			early = append(early, e)
		}
	}
	early = append(early, bedsDaily(r, "F1", 0, 23, 100, 40)...)
	onTime = append(slices.Clone(early[:0:0]), cases...)
	onTime = append(onTime, bedsDaily(r, "F1", 0, 23, 100, 40)...)

	f := newFeeder(t)
	f.apply(early...)
	for n := 21; n <= 23; n++ {
		in := f.latest(r, n)
		if in.RMean != nil || in.RStatus != schemas.RStatusStaleFeed || in.Cases7dPer100k != nil {
			t.Errorf("day %d: R %v (status %q), incidence %v: want none, the case feed stopped after day 20", n, in.RMean, in.RStatus, in.Cases7dPer100k)
		}
		if !slices.Equal(in.StaleFeeds, []string{"case"}) || !strings.Contains(reasonOf(in, schemas.FlagStaleFeed), "case feed reported through "+day(20).String()) {
			t.Errorf("day %d: stale feeds %v, reason %q", n, in.StaleFeeds, reasonOf(in, schemas.FlagStaleFeed))
		}
		if in.BedOccupancyPct == nil || in.Positivity7dPct == nil {
			t.Errorf("day %d: beds and tests kept flowing, but ПЗК %v and positivity %v", n, in.BedOccupancyPct, in.Positivity7dPct)
		}
	}
	if in := f.latest(r, 20); in.RStatus != schemas.RStatusOK || len(in.StaleFeeds) != 0 {
		t.Errorf("day 20: status %q, stale %v; the case feed reported that day", in.RStatus, in.StaleFeeds)
	}
	// The late upload.
	f.apply(late...)
	ref := newFeeder(t)
	ref.apply(onTime...)
	for n := 0; n <= 23; n++ {
		if got, want := content(t, f.latest(r, n)), content(t, ref.latest(r, n)); got != want {
			t.Errorf("day %d after the late upload:\n got %s\nwant %s", n, got, want)
		}
	}
}

// TestReportCompleteMakesZeroReal: a day without cases is missing until the
// producer says the day is complete; then it is a real zero and R counts it.
func TestReportCompleteMakesZeroReal(t *testing.T) {
	const r = "KZ-75"
	evs := steadyCases(r, 0, 14, 20)
	evs = append(evs, testEv("t-15", r, 15, schemas.ResultNegative)) // the lab reports day 15
	f := newFeeder(t)
	f.apply(evs...)
	if in := f.latest(r, 15); in.RStatus != schemas.RStatusStaleFeed {
		t.Fatalf("day 15 without cases or report_complete: R status %q, want %s", in.RStatus, schemas.RStatusStaleFeed)
	}
	f.apply(reportComplete("rc-15", r, schemas.TypeCase, 15))
	in := f.latest(r, 15)
	if in.RStatus != schemas.RStatusOK || in.RMean == nil || in.Cases != 0 || len(in.StaleFeeds) != 0 {
		t.Fatalf("day 15 after report_complete: status %q, R %v, cases %d, stale %v", in.RStatus, in.RMean, in.Cases, in.StaleFeeds)
	}
	// R with the zero is lower than R of the day before (no new cases).
	if prev := f.latest(r, 14); *in.RMean >= *prev.RMean {
		t.Errorf("R %.3f after a day without cases, %.3f the day before", *in.RMean, *prev.RMean)
	}
}

// TestSporadicCases: one case every six days. R exists (the prior
// dominates it) but is marked few_cases and uncertain, so decisions treat it
// as unknown.
func TestSporadicCases(t *testing.T) {
	const r = "KZ-75"
	var evs []schemas.Event
	for d := 0; d <= 60; d++ {
		if d%6 == 0 {
			evs = append(evs, caseEv(fmt.Sprintf("c%d", d), r, d))
		}
		evs = append(evs, reportComplete(fmt.Sprintf("rc%d", d), r, schemas.TypeCase, d))
	}
	evs = append(evs, bedsDaily(r, "F1", 0, 60, 100, 60)...)
	f := newFeeder(t)
	f.apply(evs...)
	for n := 14; n <= 60; n++ {
		in := f.latest(r, n)
		if in.RStatus != schemas.RStatusFewCases || in.RMean == nil || in.RCases > 2 {
			t.Fatalf("day %d: R %v status %q from %d cases, want few_cases", n, in.RMean, in.RStatus, in.RCases)
		}
		if !slices.Contains(in.Uncertain, "r_mean") || !slices.Contains(in.Flags, schemas.FlagFewCases) {
			t.Fatalf("day %d: uncertain %v flags %v", n, in.Uncertain, in.Flags)
		}
	}
	// Enough cases: R is ok.
	g := newFeeder(t)
	g.apply(steadyCases(r, 0, 20, 3)...) // 21 local cases a week
	if in := g.latest(r, 20); in.RStatus != schemas.RStatusOK || slices.Contains(in.Uncertain, "r_mean") {
		t.Errorf("3 cases a day: status %q uncertain %v", in.RStatus, in.Uncertain)
	}
}

// TestPersonEpisodes: a person notified by a laboratory and by a hospital is
// one case, on the first report date, whatever the order the notifications
// arrive in; a new positive after the episode window is a new case.
func TestPersonEpisodes(t *testing.T) {
	const r = "KZ-75"
	lab := caseEv("lab-p", r, 3, of("p"), onset(1))
	hosp := caseEv("hosp-p", r, 5, of("p"), onset(2))
	later := caseEv("later-p", r, 120, of("p"))
	other := caseEv("lab-q", r, 5, of("q"))
	for _, order := range [][]schemas.Event{{lab, hosp, other, later}, {later, hosp, other, lab}} {
		f := newFeeder(t)
		for _, e := range order {
			f.apply(e)
		}
		d3, d5, d120 := f.latest(r, 3), f.latest(r, 5), f.latest(r, 120)
		if d3.Cases != 1 || d3.CasesRepeat != 0 || d5.Cases != 1 || d5.CasesRepeat != 1 || d120.Cases != 1 {
			t.Errorf("order %s…: day 3 %d (+%d repeat), day 5 %d (+%d repeat), day 120 %d; want 1, 1 (+1 repeat), 1",
				order[0].EventID, d3.Cases, d3.CasesRepeat, d5.Cases, d5.CasesRepeat, d120.Cases)
		}
		if f.latest(r, 1).CasesByOnset != 1 || f.latest(r, 2).CasesByOnset != 0 {
			t.Errorf("order %s…: by onset, day 1 %d and day 2 %d; want the first notification's onset only",
				order[0].EventID, f.latest(r, 1).CasesByOnset, f.latest(r, 2).CasesByOnset)
		}
	}
	// episode_days 0 counts every event (the negative control).
	f := newFeeder(t)
	f.g.cfg.EpisodeDays = 0
	f.apply(lab, hosp)
	if f.latest(r, 5).Cases != 1 || f.latest(r, 5).CasesRepeat != 0 {
		t.Errorf("episode_days 0: day 5 has %d cases", f.latest(r, 5).Cases)
	}
}

// TestRetractionEqualsRunWithout: retracting a case (and a test, and moving a
// case to the right region by superseding it) leaves every record equal,
// number for number, to a run in which the withdrawn events never existed.
// R is checked in particular: a retraction lowers a past day's count and its
// R must be exactly what the data without that case give.
func TestRetractionEqualsRunWithout(t *testing.T) {
	regions := []string{"KZ-75", "KZ-71"}
	var all []schemas.Event
	for _, s := range simulate(3, regions, 40) {
		all = append(all, s.ev)
	}
	pick := func(typ schemas.EventType, region string, withPerson bool) schemas.Event {
		for _, e := range all {
			if e.Type == typ && e.Region == region && e.Date() > day(10) && e.Date() < day(30) &&
				(e.Type != schemas.TypeCase || e.Confirmed()) && (pseudonym(e.Person) != "") == withPerson {
				return e
			}
		}
		t.Fatalf("no %s in %s", typ, region)
		return schemas.Event{}
	}
	gone := pick(schemas.TypeCase, "KZ-75", true)
	test := pick(schemas.TypeLabTest, "KZ-75", true)
	moved := pick(schemas.TypeCase, "KZ-71", true)
	fixed := moved
	fixed.EventID, fixed.Region, fixed.Supersedes = moved.EventID+"-fixed", "KZ-75", moved.EventID

	f := newFeeder(t)
	f.apply(all...)
	f.apply(
		schemas.Event{EventID: "rt-1", Type: schemas.TypeRetraction, Region: "KZ-75", Source: gone.Source, Retracts: gone.EventID, RetractionReason: schemas.RetractDiscarded, ReportDate: day(39)},
		schemas.Event{EventID: "rt-2", Type: schemas.TypeRetraction, Region: "KZ-75", Source: test.Source, Retracts: test.EventID, RetractionReason: schemas.RetractEnteredInError, ReportDate: day(39)},
		fixed,
	)
	// Retracting again, or a redelivery, changes nothing.
	before := content(t, f.latest("KZ-75", int(gone.ReportDate-d0)))
	f.apply(schemas.Event{EventID: "rt-3", Type: schemas.TypeRetraction, Region: "KZ-75", Source: gone.Source, Retracts: gone.EventID, RetractionReason: schemas.RetractDuplicate, ReportDate: day(39)})
	if after := content(t, f.latest("KZ-75", int(gone.ReportDate-d0))); after != before {
		t.Error("a second retraction of the same case changed its day")
	}

	var without []schemas.Event
	for _, e := range all {
		switch e.EventID {
		case gone.EventID, test.EventID:
		case moved.EventID:
			// The new version alone: it corrects nothing in a stream that
			// never held the old one (ingest would refuse it, and the
			// processor dead-letters a correction whose target is gone).
			alone := fixed
			alone.Supersedes = ""
			without = append(without, alone)
		default:
			without = append(without, e)
		}
	}
	ref := newFeeder(t)
	ref.apply(without...)
	ref.apply(reportComplete("rc-pad", "KZ-75", schemas.TypeVaccination, 0)) // nothing: keeps the event count comparable
	diffs := 0
	for _, region := range regions {
		for n := 0; n < 40; n++ {
			got, want := f.latest(region, n), ref.latest(region, n)
			if content(t, got) != content(t, want) {
				diffs++
				if diffs <= 3 {
					t.Errorf("%s day %d:\n got %s\nwant %s", region, n, content(t, got), content(t, want))
				}
			}
		}
	}
	g := f.latest("KZ-75", int(gone.ReportDate-d0))
	w := ref.latest("KZ-75", int(gone.ReportDate-d0))
	if g.RMean == nil || w.RMean == nil || *g.RMean != *w.RMean || *g.RQ975 != *w.RQ975 {
		t.Errorf("R on the retracted case's day: %v, without the case %v", g.RMean, w.RMean)
	}
}

// TestFacilities: a facility closed long ago no longer blocks easing; one
// that falls silent is stale for two weeks, then presumed closed (reported,
// not stale); one missing from a registry is flagged.
func TestFacilities(t *testing.T) {
	const r = "KZ-75"
	base := append(bedsDaily(r, "F1", 0, 300, 100, 40), bedsDaily(r, "F2", 0, 9, 50, 20)...)
	closing := schemas.Event{EventID: "f2-closed", Type: schemas.TypeFacility, Region: r, Source: "registry",
		FacilityID: "f2", FacilityStatus: schemas.FacilityClosed, EffectiveDate: day(10)}
	open1 := schemas.Event{EventID: "f1-open", Type: schemas.TypeFacility, Region: r, Source: "registry",
		FacilityID: "F1", FacilityStatus: schemas.FacilityOpen, EffectiveDate: day(0)}

	f := newFeeder(t)
	f.apply(append(base, closing, open1)...)
	in := f.latest(r, 300)
	if in.StaleFacilities != 0 || slices.Contains(in.Flags, schemas.IndicatorFlagStaleBeds) || in.ClosedFacilities != 1 || in.BedsTotal != 100 {
		t.Errorf("day 300, F2 closed on day 10: stale %d, flags %v, closed %d, beds %d", in.StaleFacilities, in.Flags, in.ClosedFacilities, in.BedsTotal)
	}

	// Without the closing event: stale for two weeks, then presumed closed.
	g := newFeeder(t)
	g.apply(base...)
	if in := g.latest(r, 15); in.StaleFacilities != 1 || !slices.Contains(in.Flags, schemas.IndicatorFlagStaleBeds) {
		t.Errorf("day 15, F2 silent since day 9: stale %d flags %v", in.StaleFacilities, in.Flags)
	}
	in = g.latest(r, 30)
	if in.StaleFacilities != 0 || slices.Contains(in.Flags, schemas.IndicatorFlagStaleBeds) || in.PresumedClosedFacilities != 1 ||
		!strings.Contains(reasonOf(in, schemas.FlagPresumedClosed), "f2") {
		t.Errorf("day 30, F2 silent for 21 days: stale %d, presumed closed %d, flags %v %v", in.StaleFacilities, in.PresumedClosedFacilities, in.Flags, in.FlagReasons)
	}

	// A registry exists: a facility missing from it is flagged, and counted.
	h := newFeeder(t)
	h.apply(append(bedsDaily(r, "F1", 0, 5, 100, 40), open1)...)
	h.apply(bedsDaily(r, "Mystery 9", 5, 5, 30, 30)...)
	in = h.latest(r, 5)
	if in.UnknownFacilities != 1 || !strings.Contains(reasonOf(in, schemas.FlagUnknownFacility), "mystery-9") || in.BedsTotal != 130 {
		t.Errorf("unknown facility: %d unknown, beds %d, flags %v %v", in.UnknownFacilities, in.BedsTotal, in.Flags, in.FlagReasons)
	}
}
